#!/usr/bin/env bash
# Portcullis scale benchmark (issue 8, "scale"): the login and verification figures on a large
# database (1,000,000 users, 10,000,000 login records in the retention window plus 1,000,000
# older ones) as a ratio to the same figures on a fresh database, measured in the same run, on
# SQLite and on PostgreSQL + Redis; and the retention job on the large database: how long it
# takes, and the TokenReview and login rates while it runs as a ratio to the rates after it.
#
#   bench/scale.sh            full size (needs ~5 GB of disk for SQLite, ~5 GB in PostgreSQL)
#   QUICK=1 bench/scale.sh    100,000 users and 1,100,000 records, for developing
#   ROUNDS=3 SLICE=3 PW_SLICE=5 BACKENDS="sqlite postgres" bench/scale.sh
#   SCALE_USERS_N=... SCALE_RECORDS_N=... bench/scale.sh   (other sizes; 10% of the records expired)
#
# Seeding: bench/scale/seed-{sqlite,postgres}.sql, one INSERT ... SELECT per table generated in
# the database (generate_series), after the real binary has created the schema and four
# template users bench0..bench3 whose argon2id hashes every seeded user reuses.
# The server runs pinned to CPU 0 and wrk to CPU 1, on loopback; every process started here is
# stopped by its pid, the PostgreSQL databases are dropped and the SQLite files removed.
# Writes bench/results/scale.json (scale-quick.json with QUICK=1; bench/results is not
# committed) and the table between the
# scale markers in docs/performance.md (not with QUICK=1). Needs wrk, sqlite3, psql.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK="${QUICK:-0}"
if [ "$QUICK" = 1 ]; then USERS=100000 RECORDS=1100000; else USERS=1000000 RECORDS=11000000; fi
USERS="${SCALE_USERS_N:-$USERS}" RECORDS="${SCALE_RECORDS_N:-$RECORDS}"
ROUNDS="${ROUNDS:-3}" SLICE="${SLICE:-3}" PW_SLICE="${PW_SLICE:-5}"
BACKENDS="${BACKENDS:-sqlite postgres}"
RETENTION_MAX_S="${RETENTION_MAX_S:-900}"
TOKENS_PER_SERVER="${TOKENS_PER_SERVER:-32}"
for tool in wrk sqlite3 psql python3; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p portcullis
BIN="$CARGO_TARGET_DIR/release/portcullis"
WORK="$(mktemp -d)"
PIDS=()
PG_DBS=()
PSQL=(psql -h 127.0.0.1 -U postgres -qAt -v ON_ERROR_STOP=1)
# On failure the wrk outputs and server logs stay in $WORK (the databases are always removed).
cleanup() {
  local status=$?
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for db in "${PG_DBS[@]}"; do "${PSQL[@]}" -d test -c "DROP DATABASE IF EXISTS $db" || true; done
  rm -rf "$WORK/db"
  if [ "$status" = 0 ]; then rm -rf "$WORK"; else echo "failed; outputs kept in $WORK" >&2; fi
}
trap cleanup EXIT

# Retention as KubeSphere's defaults: 7 days, 100 records per user. Records span 7.7 days.
WINDOW_MS=$((168 * 3600 * 1000))
SPAN_MS=$((WINDOW_MS * 11 / 10))
HEAVY=$((RECORDS / 50000 > 0 ? RECORDS / 50000 : 1))
cat > "$WORK/kubesphere.yaml" <<YAML
authentication:
  authenticateRateLimiterMaxTries: 10
  authenticateRateLimiterDuration: 10m
  loginHistoryRetentionPeriod: 168h
  loginHistoryMaximumEntries: 100
  multipleLogin: true
  jwtSecret: bench-secret-0123456789
  oauthOptions:
    accessTokenMaxAge: 2h
    accessTokenInactivityTimeout: 2h
YAML

now_ms() { date +%s%3N; }
# portcullis ARGS... with the benchmark's configuration, for database $1
pc() { local db="$1"; shift; RUST_LOG=warn PORTCULLIS_DATA_DIR="$WORK/data" PORTCULLIS_DATABASE="$db" "$BIN" "$@" --config "$WORK/kubesphere.yaml"; }

# create_db URL: the schema (made by the binary) and the template users bench0..bench3
create_db() {
  for k in 0 1 2 3; do
    pc "$1" user add "bench$k" --password "Bench-Passw0rd-$k" --email "bench$k@example.com" --groups devs >/dev/null
  done
}

# seed BACKEND URL-OR-FILE: the large database's rows; prints the seconds it took
seed() {
  local prelude="CREATE TEMP TABLE seed AS SELECT CAST($USERS AS BIGINT) AS users, CAST($RECORDS AS BIGINT) AS records, CAST($HEAVY AS BIGINT) AS heavy, CAST($(now_ms) AS BIGINT) AS now_ms, CAST($SPAN_MS AS BIGINT) AS span_ms;"
  local t0; t0=$(now_ms)
  if [ "$1" = sqlite ]; then
    { echo "$prelude"; cat bench/scale/seed-sqlite.sql; } | sqlite3 -bail "$2" >/dev/null
  else
    { echo "$prelude"; cat bench/scale/seed-postgres.sql; } | "${PSQL[@]}" -d "$2" >/dev/null
  fi
  echo $(( ($(now_ms) - t0) / 1000 ))
}

# start NAME DATABASE_URL [REDIS_URL] -> sets URL_<NAME>; the server's log is $WORK/NAME.log
start() {
  local name="$1" db="$2" redis="${3:-}"
  PORTCULLIS_DATA_DIR="$WORK/data" PORTCULLIS_DATABASE="$db" PORTCULLIS_REDIS="$redis" \
    PORTCULLIS_LOG_FORMAT=json RUST_LOG=warn,portcullis=info \
    taskset -c 0 "$BIN" serve --config "$WORK/kubesphere.yaml" --listen 127.0.0.1:0 \
    >"$WORK/$name.out" 2>"$WORK/$name.log" &
  PIDS+=($!)
  local addr="" deadline=$(( $(now_ms) + 120000 ))
  while [ -z "$addr" ] && [ "$(now_ms)" -lt "$deadline" ]; do
    addr=$(grep -o '"listen":"[^"]*"' "$WORK/$name.log" 2>/dev/null | head -n1 | cut -d'"' -f4 || true)
    [ -n "$addr" ] || sleep 0.05
  done
  [ -n "$addr" ] || { echo "portcullis ($name) did not start:" >&2; cat "$WORK/$name.log" >&2; exit 1; }
  printf -v "URL_$name" 'http://%s' "$addr"
}

# login URL USER PASSWORD -> access token
login() {
  curl -sf --max-time 60 -d grant_type=password -d "username=$2" -d "password=$3" "$1/oauth/token" |
    sed -E 's/.*"access_token":"([^"]+)".*/\1/'
}

# tokens NAME USERS -> $WORK/NAME.tokens: "user token" lines for random users (USERS=0: bench0..3)
tokens() {
  local url="URL_$1" n k user token
  : >"$WORK/$1.tokens"
  for _ in $(seq 1 "$TOKENS_PER_SERVER"); do
    if [ "$2" -gt 0 ]; then
      n=$((RANDOM * 32768 + RANDOM)); n=$((n % $2)); [ $((n % 1000)) -eq 999 ] && n=$((n - 1))
      user=$(printf 'user%07d' "$n") k=$((n % 4))
    else
      k=$((RANDOM % 4)) user="bench$k"
    fi
    token=$(login "${!url}" "$user" "Bench-Passw0rd-$k") || { echo "login as $user failed" >&2; exit 1; }
    echo "$user $token" >>"$WORK/$1.tokens"
  done
}

load() { taskset -c 1 wrk -t1 --latency "$@"; }
# figure KIND SERVER USERS SECONDS OUT: one wrk slice of one figure against one server
figure() {
  local url="URL_$2"
  case "$1" in
    review) TOKEN=$(awk 'NR==1 {print $2}' "$WORK/$2.tokens") load -c32 -d"$4s" -s bench/tokenreview.lua "${!url}/oauth/authenticate" ;;
    password) SCALE_USERS="$3" load -c4 -d"$4s" -s bench/scale/password.lua "${!url}/oauth/token" ;;
    records | userinfo) LOOKUP="$1" TOKENS_FILE="$WORK/$2.tokens" load -c32 -d"$4s" -s bench/scale/lookup.lua "${!url}/" ;;
  esac >"$5"
}

for backend in $BACKENDS; do
  echo "== $backend: creating and seeding ($USERS users, $RECORDS login records)"
  if [ "$backend" = sqlite ]; then
    mkdir -p "$WORK/db"
    SMALL_DB="sqlite://$WORK/db/small.db" LARGE_FILE="$WORK/db/large.db" LARGE_DB="sqlite://$WORK/db/large.db"
    REDIS_SMALL="" REDIS_LARGE=""
  else
    pg_isready -h 127.0.0.1 -p 5432 -q || { echo "PostgreSQL is not running: skipped" >&2; continue; }
    for db in "portcullis_scale_$$" "portcullis_scale_$$_small"; do
      "${PSQL[@]}" -d test -c "CREATE DATABASE $db"
      PG_DBS+=("$db")
    done
    LARGE_FILE="portcullis_scale_$$" LARGE_DB="postgres://postgres@127.0.0.1:5432/portcullis_scale_$$"
    SMALL_DB="postgres://postgres@127.0.0.1:5432/portcullis_scale_$$_small"
    REDIS_SMALL="redis://127.0.0.1:6379/12" REDIS_LARGE="redis://127.0.0.1:6379/13"
  fi
  create_db "$SMALL_DB"
  create_db "$LARGE_DB"
  seed "$backend" "$LARGE_FILE" >"$WORK/$backend.seed_s"
  echo "   seeded in $(cat "$WORK/$backend.seed_s") s"
  if [ "$backend" = sqlite ]; then du -b "$WORK/db/large.db" | cut -f1 >"$WORK/$backend.db_bytes"
  else "${PSQL[@]}" -d test -c "SELECT pg_database_size('$LARGE_FILE')" >"$WORK/$backend.db_bytes"; fi

  # The retention job runs when the server starts (then every 10 minutes): on the large
  # database it deletes the records past 7 days and the busy accounts' records past 100.
  echo "== $backend: retention job at start-up, under load"
  L="${backend}_large" S="${backend}_small" url_large="URL_${backend}_large"
  start "$L" "$LARGE_DB" "$REDIS_LARGE"
  # One token now, for TokenReview during the job; the console lookups' tokens after it.
  TOKENS_PER_SERVER=1 tokens "$L" "$USERS"
  : >"$WORK/$L.during"
  i=0 deadline=$(( $(now_ms) + RETENTION_MAX_S * 1000 ))
  until grep -q 'login records pruned by retention\|login-record retention failed' "$WORK/$L.log"; do
    [ "$(now_ms)" -lt "$deadline" ] || { echo "retention did not finish in $RETENTION_MAX_S s" >&2; exit 1; }
    i=$((i + 1))
    figure review "$L" "$USERS" 1 "$WORK/${L}_during_review_$i.txt"
    echo "review $i $(now_ms)" >>"$WORK/$L.during"
    figure password "$L" "$USERS" 2 "$WORK/${L}_during_password_$i.txt"
    echo "password $i $(now_ms)" >>"$WORK/$L.during"
  done

  tokens "$L" "$USERS"
  echo "== $backend: fresh and large database, $ROUNDS interleaved rounds"
  start "$S" "$SMALL_DB" "$REDIS_SMALL"
  tokens "$S" 0
  for r in $(seq 1 "$ROUNDS"); do
    for kind in review password records userinfo; do
      secs=$SLICE; [ "$kind" = password ] && secs=$PW_SLICE
      figure "$kind" "$S" 0 "$secs" "$WORK/${S}_${kind}_r$r.txt"
      figure "$kind" "$L" "$USERS" "$secs" "$WORK/${L}_${kind}_r$r.txt"
    done
  done
  # Retention runs every 10 minutes: a second run during the rounds would be counted here.
  curl -sf "${!url_large}/metrics" | grep '^portcullis_background_job_runs_total{' | grep 'job="retention"' | grep 'outcome="ran"' |
    awk '{print $NF}' >"$WORK/$L.retention_runs" || echo 0 >"$WORK/$L.retention_runs"
  python3 -B bench/scale/report.py collect "$WORK" "$backend" "$ROUNDS"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PIDS=()
  rm -rf "$WORK/db"
done

OUT=bench/results/scale.json; [ "$QUICK" = 1 ] && OUT=bench/results/scale-quick.json
mkdir -p bench/results
python3 -B bench/scale/report.py write "$WORK" "$OUT" "$QUICK" "$USERS" "$RECORDS" \
  "QUICK=$QUICK SCALE_USERS_N=$USERS SCALE_RECORDS_N=$RECORDS ROUNDS=$ROUNDS SLICE=$SLICE PW_SLICE=$PW_SLICE bench/scale.sh"
