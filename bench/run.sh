#!/usr/bin/env bash
# Portcullis benchmark harness (issue 8). Every figure is a ratio to a baseline measured in the same
# rounds, because these machines are shared and noisy:
#   token verification (TokenReview, userinfo, introspection)   / bare axum handler (wrk)
#   client_credentials, refresh_token, authorization_code,
#   federated login                                             / bare axum handler (loadgen)
#   password grant logins/s                                     / argon2id verifications/s
#   refresh_token grants/s (each signs an RS256 ID token)         / RS256 signatures/s
#   Portcullis / oidc-provider on client_credentials, refresh_token (RS256 and ES256 ID tokens),
#   introspection, userinfo
# on SQLite (in-process state) and on PostgreSQL + Redis. Each round runs every subject for one slice,
# one after the other; a figure is the median over the rounds of the per-round ratios.
# Servers run on CPU 0 (taskset), load generators on CPU 1; loopback only.
# Also: RSS idle and peak under the verification load (from /proc), start-up time to /readyz
# (median of STARTUP_RUNS), release binary size.
#
# Output: bench/results/latest.json, the tables between the bench markers of docs/performance.md and
# docs/images/performance.png (bench/report.py, matplotlib in bench/.venv, installed here once).
#
# Usage: bench/run.sh            full run (ROUNDS=5, SLICE=3 s: about 12 minutes with the build done)
#        QUICK=1 bench/run.sh    one round of 1-second slices, for developing the harness
# Knobs: ROUNDS, SLICE (seconds), CONC (connections, default 32), FED_USERS (distinct upstream users,
#        default 10000), STARTUP_RUNS, NO_PG=1 (SQLite only), NO_PEER=1 (no oidc-provider), NO_DOCS=1,
#        DB_CPU=N (pin the running PostgreSQL and Redis servers to CPU N for the run, as if they were
#        on another host; their previous CPU sets are restored at exit).
# Needs: wrk, taskset, curl, python3; node for oidc-provider; pg_isready/psql for PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${QUICK:-0}" = 1 ]; then
  ROUNDS="${ROUNDS:-1}" SLICE="${SLICE:-1}" STARTUP_RUNS="${STARTUP_RUNS:-5}"
else
  ROUNDS="${ROUNDS:-5}" SLICE="${SLICE:-3}" STARTUP_RUNS="${STARTUP_RUNS:-20}"
fi
CONC="${CONC:-32}"
FED_USERS="${FED_USERS:-10000}"
PW_CONC=4
ADMIN_PW=bench-Admin-Passw0rd
CLIENT=bench:bench-client-secret
# The same client with ES256 ID tokens (idTokenSigningAlg; oidc-provider: id_token_signed_response_alg).
CLIENT_ES=bench-es:bench-client-secret
for tool in wrk taskset curl python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is not installed (apt-get install $tool)" >&2; exit 1; }
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release -q -p portcullis -p portcullis-bench
BIN="$CARGO_TARGET_DIR/release"

# matplotlib for the plot, once, in bench/.venv (ignored by git).
VENV=bench/.venv
if ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check matplotlib
fi

# oidc-provider: the npm package the provider tests already install (pinned by its package-lock.json).
PEER_DIR=crates/test-upstreams/peers/oidc
PEER=0
if [ "${NO_PEER:-0}" != 1 ] && command -v node >/dev/null; then
  if [ ! -d "$PEER_DIR/node_modules/oidc-provider" ] && command -v npm >/dev/null; then
    (cd "$PEER_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  [ -d "$PEER_DIR/node_modules/oidc-provider" ] && PEER=1
fi

WORK="$(mktemp -d)"
RAW="$WORK/raw"
mkdir -p "$RAW"
PIDS=()
PG_DB=""
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$PG_DB" ]; then psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true; fi
  # DB_CPU: every thread of the database servers gets its CPU set back.
  if [ -f "$WORK/db_cpus" ]; then
    while read -r pid cpus; do taskset -a -p -c "$cpus" "$pid" >/dev/null 2>&1 || true; done <"$WORK/db_cpus"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${DB_CPU:-}" ]; then
  # The local database servers' processes (PostgreSQL's postmaster and backends, redis-server),
  # by their exact process name; new backends inherit the postmaster's CPU set.
  for pid in $(pgrep -x postgres; pgrep -x redis-server); do
    echo "$pid $(taskset -p -c "$pid" | sed 's/.*: //')" >>"$WORK/db_cpus"
    taskset -a -p -c "$DB_CPU" "$pid" >/dev/null
  done
  echo "== database servers pinned to CPU $DB_CPU ($(wc -l <"$WORK/db_cpus") processes)"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_for CMD...: polls CMD until it succeeds (20-second deadline).
wait_for() {
  local end=$((SECONDS + 20))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || { echo "bench: timed out waiting for: $*" >&2; return 1; }
    sleep 0.02
  done
}
status_kb() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }
# User + system CPU ticks of a process so far (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# hash_cpu URL: "SECONDS COUNT" of the server's portcullis_password_hash_cpu_seconds so far.
hash_cpu() {
  curl -sf "$1/metrics" | awk '/^portcullis_password_hash_cpu_seconds_sum/ {s=$2} /^portcullis_password_hash_cpu_seconds_count/ {c=$2} END {printf "%.9f %d\n", s, c}'
}
json_field() { python3 -c 'import json,sys; v=json.load(sys.stdin); print(v[sys.argv[1]])' "$1"; }

# Load on CPU 1. wrk_slice OUT URL LUA [CONNECTIONS]; lg_slice OUT LOADGEN-ARGS...
wrk_slice() { taskset -c 1 wrk -t1 -c"${4:-$CONC}" -d"${SLICE}s" --latency -s "$3" "$2" >"$1"; }
lg_slice() { local out="$1"; shift; taskset -c 1 "$BIN/loadgen" -c "$CONC" -d "$SLICE" "$@" >"$out"; }

# The instant upstream of the federated logins (CPU 1, with the load generator that plays the browser).
taskset -c 1 "$BIN/instant-upstream" 127.0.0.1:0 >"$WORK/upstream.addr" &
PIDS+=($!)
wait_for test -s "$WORK/upstream.addr"
UPSTREAM="http://$(head -n1 "$WORK/upstream.addr")"

# write_config FILE PORT: KubeSphere configuration with the bench client and the instant upstream.
write_config() {
  cat >"$1" <<YAML
authentication:
  authenticateRateLimiterMaxTries: 10
  authenticateRateLimiterDuration: 10m
  multipleLogin: true
  jwtSecret: bench-secret-0123456789
  oauthOptions:
    accessTokenMaxAge: 2h
    accessTokenInactivityTimeout: 2h
    clients:
    - name: bench
      secret: bench-client-secret
      redirectURIs: ["http://127.0.0.1:9/cb"]
      grantMethod: auto
      trusted: false
    - name: bench-es
      secret: bench-client-secret
      redirectURIs: ["http://127.0.0.1:9/cb"]
      grantMethod: auto
      idTokenSigningAlg: ES256
    - name: console
      secret: console-secret
      trusted: true
    identityProviders:
    - name: instant
      type: OAuth2IdentityProvider
      mappingMethod: auto
      provider:
        clientID: bench-upstream
        clientSecret: bench-upstream-secret
        redirectURL: http://127.0.0.1:$2/oauth/callback/instant
        authURL: $UPSTREAM/authorize
        tokenURL: $UPSTREAM/token
        userInfoURL: $UPSTREAM/user
        clientAuthStyle: basic
        pkce: true
        claims:
          userID: /id
          username: /login
          email: /email
          displayName: /name
YAML
}

# start_portcullis NAME DATABASE_URL [REDIS_URL]: sets URL and PID (the server on CPU 0).
start_portcullis() {
  local name="$1" db="$2" redis="${3:-}" port dir="$WORK/$1"
  # The configuration in a directory of its own, as a ConfigMap mount would be: the reload
  # watcher watches that directory, and the database's writes next to it would wake it.
  mkdir -p "$dir/config"
  port=$(free_port)
  write_config "$dir/config/kubesphere.yaml" "$port"
  PORTCULLIS_ADMIN_PASSWORD="$ADMIN_PW" PORTCULLIS_DATA_DIR="$dir" PORTCULLIS_DATABASE="$db" \
    PORTCULLIS_REDIS="$redis" PORTCULLIS_LOG_FORMAT=json RUST_LOG=warn \
    taskset -c 0 "$BIN/portcullis" serve --config "$dir/config/kubesphere.yaml" --listen "127.0.0.1:$port" \
    >"$dir/stdout" 2>"$dir/stderr" &
  PID=$!
  PIDS+=("$PID")
  URL="http://127.0.0.1:$port"
  wait_for curl -sf "$URL/readyz" || { cat "$dir/stderr" >&2; exit 1; }
}

echo "== baseline: bare axum handler (CPU 0)"
taskset -c 0 "$BIN/bare-axum" 127.0.0.1:0 >"$WORK/bare.addr" &
PIDS+=($!)
wait_for test -s "$WORK/bare.addr"
BARE="http://$(head -n1 "$WORK/bare.addr")"

PEER_URL=""
if [ "$PEER" = 1 ]; then
  echo "== oidc-provider (CPU 0, NODE_ENV=production)"
  NODE_ENV=production taskset -c 0 node bench/oidc-provider/server.mjs >"$WORK/peer.out" 2>"$WORK/peer.err" &
  PEER_PID=$!
  PIDS+=("$PEER_PID")
  wait_for grep -q issuer "$WORK/peer.out" || { cat "$WORK/peer.err" >&2; exit 1; }
  PEER_URL=$(head -n1 "$WORK/peer.out" | json_field issuer)
  echo "{\"rss_idle_kb\": $(status_kb "$PEER_PID" VmRSS)}" >"$RAW/peer_memory_idle.json"
  curl -sf "$PEER_URL/bench/tokens?refresh=0" >"$WORK/peer_tokens.json"
  PEER_AT=$(json_field access_token <"$WORK/peer_tokens.json")
  curl -sf -H "Authorization: Bearer $PEER_AT" "$PEER_URL/me" | grep -q '"sub"'
  curl -sf -u "$CLIENT" -d "token=$PEER_AT" "$PEER_URL/token/introspection" | grep -q '"active":true'
fi

# Verification requests against Portcullis (TOKEN, AT of the current backend) and the peer.
review() { TOKEN="$TOKEN" wrk_slice "$1" "$2/oauth/authenticate" bench/tokenreview.lua; }
userinfo() { METHOD=GET AUTH="Bearer $3" BODY="" wrk_slice "$1" "$2" bench/request.lua; }
introspect() { METHOD=POST AUTH="Basic $(printf %s "$CLIENT" | base64 -w0)" BODY="token=$3" wrk_slice "$1" "$2" bench/request.lua; }

# bench_backend NAME DATABASE_URL [REDIS_URL]: every scenario against one Portcullis.
bench_backend() {
  local b="$1" out="$RAW/$1"
  mkdir -p "$out"
  echo "== Portcullis on $b"
  start_portcullis "$b" "$2" "${3:-}"
  local idle_at_ready
  idle_at_ready=$(status_kb "$PID" VmRSS)
  # Settled: 12 s later, past the runtime's 10 s keep-alive of the blocking thread that hashed
  # the first start's admin password, the server's release of idle argon2 memory and the
  # binary's periodic return of freed memory (crates/portcullis/src/main.rs).
  sleep 12
  echo "{\"rss_idle_kb\": $idle_at_ready, \"rss_idle_settled_kb\": $(status_kb "$PID" VmRSS)}" >"$out/memory_idle.json"
  taskset -c 1 "$BIN/loadgen" --url "$URL" tokens --client "$CLIENT" --user "admin:$ADMIN_PW" \
    --scope "openid profile email" >"$WORK/tokens_$b.json"
  AT=$(json_field access_token <"$WORK/tokens_$b.json")
  TOKEN=$(curl -sf -u console:console-secret -d grant_type=password -d username=admin -d password="$ADMIN_PW" "$URL/oauth/token" | json_field access_token)
  curl -sf -H 'Content-Type: application/json' -d "{\"spec\":{\"token\":\"$TOKEN\"}}" "$URL/oauth/authenticate" | grep -q '"authenticated":true'
  curl -sf -H "Authorization: Bearer $AT" "$URL/oauth/userinfo" | grep -q '"sub"'
  curl -sf -u "$CLIENT" -d "token=$AT" "$URL/oauth/introspect" | grep -q '"active":true'

  echo "   memory under the verification load"
  review "$out/mem_review.txt" "$URL"
  userinfo "$out/mem_userinfo.txt" "$URL/oauth/userinfo" "$AT"
  introspect "$out/mem_introspect.txt" "$URL/oauth/introspect" "$AT"
  echo "{\"rss_peak_verification_kb\": $(status_kb "$PID" VmHWM), \"rss_after_verification_kb\": $(status_kb "$PID" VmRSS)}" >"$out/memory_load.json"
  if [ "$PEER" = 1 ] && [ ! -e "$RAW/peer_memory_load.json" ]; then
    userinfo "$out/mem_peer_userinfo.txt" "$PEER_URL/me" "$PEER_AT"
    introspect "$out/mem_peer_introspect.txt" "$PEER_URL/token/introspection" "$PEER_AT"
    echo "{\"rss_peak_verification_kb\": $(status_kb "$PEER_PID" VmHWM), \"rss_after_verification_kb\": $(status_kb "$PEER_PID" VmRSS)}" >"$RAW/peer_memory_load.json"
  fi

  local next_user=0 r
  for r in $(seq 1 "$ROUNDS"); do
    echo "   round $r/$ROUNDS"
    # What autovacuum does in production (this machine's PostgreSQL runs with it off): fresh
    # statistics for the grown tables, which also makes PostgreSQL re-plan the server's prepared
    # statements (docs/performance.md, "PostgreSQL refresh falls across the rounds").
    case "$2" in postgres://*) psql "$2" -qc ANALYZE >/dev/null ;; esac
    TOKEN=x wrk_slice "$out/bare_wrk_r$r.txt" "$BARE/" bench/tokenreview.lua
    lg_slice "$out/bare_lg_r$r.json" --url "$BARE" fixed --path /
    review "$out/tokenreview_portcullis_r$r.txt" "$URL"
    userinfo "$out/userinfo_portcullis_r$r.txt" "$URL/oauth/userinfo" "$AT"
    introspect "$out/introspection_portcullis_r$r.txt" "$URL/oauth/introspect" "$AT"
    lg_slice "$out/client_credentials_portcullis_r$r.json" --url "$URL" client-credentials --client "$CLIENT"
    lg_slice "$out/refresh_token_portcullis_r$r.json" --url "$URL" refresh --client "$CLIENT" \
      --user "admin:$ADMIN_PW" --scope "openid offline_access"
    lg_slice "$out/refresh_token_es256_portcullis_r$r.json" --url "$URL" refresh --client "$CLIENT_ES" \
      --user "admin:$ADMIN_PW" --scope "openid offline_access"
    lg_slice "$out/authorization_code_portcullis_r$r.json" --url "$URL" authorization-code --client "$CLIENT" \
      --user "admin:$ADMIN_PW" --scope "openid profile email"
    lg_slice "$out/federated_login_portcullis_r$r.json" --url "$URL" federated --provider instant \
      --users "$FED_USERS" --first-user "$next_user"
    next_user=$(json_field next_user <"$out/federated_login_portcullis_r$r.json")
    if [ "$PEER" = 1 ]; then
      userinfo "$out/userinfo_peer_r$r.txt" "$PEER_URL/me" "$PEER_AT"
      introspect "$out/introspection_peer_r$r.txt" "$PEER_URL/token/introspection" "$PEER_AT"
      lg_slice "$out/client_credentials_peer_r$r.json" --url "$PEER_URL" --token-path /token \
        client-credentials --client "$CLIENT"
      curl -sf "$PEER_URL/bench/tokens?refresh=$CONC" | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["refresh_tokens"]))' >"$WORK/peer_rt.txt"
      lg_slice "$out/refresh_token_peer_r$r.json" --url "$PEER_URL" --token-path /token \
        refresh --client "$CLIENT" --tokens-file "$WORK/peer_rt.txt"
      curl -sf "$PEER_URL/bench/tokens?refresh=$CONC&client=bench-es" | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["refresh_tokens"]))' >"$WORK/peer_rt.txt"
      lg_slice "$out/refresh_token_es256_peer_r$r.json" --url "$PEER_URL" --token-path /token \
        refresh --client "$CLIENT_ES" --tokens-file "$WORK/peer_rt.txt"
    fi
    # The password grant and the hash it is bounded by, back to back on the same core, with
    # nothing else on it: oidc-provider goes on collecting the garbage of its slices for seconds
    # after them, which measured as 3-6 points of "overhead" here. It waits on CPU 1 meanwhile.
    [ "$PEER" = 1 ] && taskset -a -p -c 1 "$PEER_PID" >/dev/null
    taskset -c 0 "$BIN/hash-baseline" --threads 1 --seconds "$SLICE" >"$out/hash_r$r.json"
    # The ceiling of a refresh with an ID token: RS256 signatures per second on the same core.
    taskset -c 0 "$BIN/sign-baseline" --seconds "$SLICE" >"$out/rs256_r$r.json"
    # The server's CPU time over the slice too: CPU per login against CPU per hash does not
    # depend on what else the shared machine runs meanwhile.
    # And the CPU time of the hashes themselves, as the server counts it (its
    # portcullis_password_hash_cpu_seconds): Portcullis' own CPU beyond the hash, in one process.
    local cpu0 cpu1 hash0 hash1
    hash0=$(hash_cpu "$URL")
    cpu0=$(cpu_ticks "$PID")
    BENCH_USER=admin BENCH_PASSWORD="$ADMIN_PW" BENCH_CLIENT_ID=console BENCH_CLIENT_SECRET=console-secret wrk_slice "$out/password_portcullis_r$r.txt" "$URL/oauth/token" bench/password.lua "$PW_CONC"
    cpu1=$(cpu_ticks "$PID")
    hash1=$(hash_cpu "$URL")
    echo "{\"server_cpu_ticks\": $(( cpu1 - cpu0 )), \"ticks_per_second\": $(getconf CLK_TCK), \"hash_cpu_before\": [${hash0/ /, }], \"hash_cpu_after\": [${hash1/ /, }]}" >"$out/password_cpu_r$r.json"
    [ "$PEER" = 1 ] && taskset -a -p -c 0 "$PEER_PID" >/dev/null
  done
  echo "{\"rss_peak_all_kb\": $(status_kb "$PID" VmHWM)}" >"$out/memory_end.json"
  kill "$PID"
  wait "$PID" 2>/dev/null || true
}

bench_backend sqlite "sqlite://$WORK/sqlite/portcullis.db"
if [ "${NO_PG:-0}" != 1 ] && pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  PG_DB="portcullis_bench_$$"
  psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE $PG_DB" >/dev/null
  bench_backend postgres_redis "postgres://postgres@127.0.0.1:5432/$PG_DB" "redis://127.0.0.1:6379/9"
fi

echo "== start-up time to /readyz (SQLite, median of $STARTUP_RUNS)"
mkdir -p "$WORK/startup"
PORT=$(free_port)
write_config "$WORK/startup/kubesphere.yaml" "$PORT"
PORTCULLIS_ADMIN_PASSWORD="$ADMIN_PW" PORTCULLIS_DATA_DIR="$WORK/startup" PORTCULLIS_DATABASE="sqlite://$WORK/startup/portcullis.db" \
  RUST_LOG=warn taskset -c 1 "$BIN/loadgen" startup --runs "$STARTUP_RUNS" --ready-url "http://127.0.0.1:$PORT/readyz" -- \
  taskset -c 0 "$BIN/portcullis" serve --config "$WORK/startup/kubesphere.yaml" --listen "127.0.0.1:$PORT" >"$RAW/startup.json"
if [ "$PEER" = 1 ]; then
  PORT=$(free_port)
  PORT="$PORT" NODE_ENV=production taskset -c 1 "$BIN/loadgen" startup --runs "$STARTUP_RUNS" \
    --ready-url "http://127.0.0.1:$PORT/.well-known/openid-configuration" -- \
    taskset -c 0 node bench/oidc-provider/server.mjs >"$RAW/peer_startup.json"
fi

cat >"$RAW/meta.json" <<JSON
{"rounds": $ROUNDS, "slice_s": $SLICE, "concurrency": $CONC, "password_concurrency": $PW_CONC,
 "federated_users": $FED_USERS, "peer": $PEER, "binary_bytes": $(stat -c %s "$BIN/portcullis"),
 "command": "$( [ "${QUICK:-0}" = 1 ] && printf 'QUICK=1 ')$( [ -n "${DB_CPU:-}" ] && printf "DB_CPU=%s " "$DB_CPU")ROUNDS=$ROUNDS SLICE=$SLICE CONC=$CONC bench/run.sh"}
JSON
"$VENV/bin/python" bench/report.py "$RAW" ${NO_DOCS:+--no-docs}
