#!/usr/bin/env bash
# The password grant's overhead beyond the hash, alone and quickly (about a minute per build),
# for comparing builds while working on the login path. `bench/run.sh` gives the figures of record.
#
#   bench/password.sh                      # the current release build, SQLite
#   BACKEND=postgres bench/password.sh     # PostgreSQL (the local server, a scratch database)
#   bench/password.sh /tmp/a /tmp/b        # two builds (directories holding `portcullis` and
#                                          # `hash-baseline`), alternating, ROUNDS rounds each
#
# Knobs: ROUNDS (default 3 per build, run twice alternating), SLICE (seconds, default 4), CONC
# (connections, default 4). The server runs on CPU 0 and wrk on CPU 1. Per round it prints the
# server's CPU per login over its own hashes' CPU (`portcullis_password_hash_cpu_seconds`, the
# figure of record) and, for comparison, the throughput against `hash-baseline` in the same round.
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${BACKEND:-sqlite}"
ROUNDS="${ROUNDS:-3}"
SLICE="${SLICE:-4}"
CONC="${CONC:-4}"
PASSWORD='Bench-Passw0rd!'
command -v wrk >/dev/null || { echo "bench/password.sh needs wrk" >&2; exit 1; }

if [ "$#" -eq 0 ]; then
  cargo build --release -q -p portcullis -p portcullis-bench
  set -- target/release
fi

WORK=$(mktemp -d)
PID=""
DB=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  [ -n "$DB" ] && psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

hash_cpu() {
  curl -sf "$1/metrics" | awk '/^portcullis_password_hash_cpu_seconds_sum/ {s=$2}
    /^portcullis_password_hash_cpu_seconds_count/ {c=$2} END {printf "%.9f %d\n", s, c}'
}

# one_build BIN: starts that build's server on a new database and measures ROUNDS rounds.
one_build() {
  local bin="$1" dir port url r
  dir=$(mktemp -d -p "$WORK")
  mkdir -p "$dir/config"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  url="http://127.0.0.1:$port"
  cat >"$dir/config/kubesphere.yaml" <<YAML
authentication:
  jwtSecret: bench-secret-0123456789
  # As bench/run.sh: each login keeps the others (KubeSphere's default, false, adds a revocation
  # of the user's other sessions to every login).
  multipleLogin: true
  oauthOptions:
    clients:
    - name: console
      secret: console-secret
      trusted: true
YAML
  local database redis=""
  if [ "$BACKEND" = postgres ]; then
    DB="portcullis_pwbench_$$"
    psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
    psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE $DB" >/dev/null
    database="postgres://postgres@127.0.0.1:5432/$DB"
    redis="redis://127.0.0.1:6379/9"
  else
    database="sqlite://$dir/portcullis.db"
  fi
  PORTCULLIS_ADMIN_PASSWORD="$PASSWORD" PORTCULLIS_DATA_DIR="$dir" PORTCULLIS_DATABASE="$database" \
    PORTCULLIS_REDIS="$redis" RUST_LOG=warn \
    taskset -c 0 "$bin/portcullis" serve --config "$dir/config/kubesphere.yaml" --listen "127.0.0.1:$port" \
    >"$dir/stdout" 2>"$dir/stderr" &
  PID=$!
  local i
  for i in $(seq 1 200); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.05; done
  curl -sf "$url/readyz" >/dev/null || { cat "$dir/stderr" >&2; exit 1; }
  for r in $(seq 1 "$ROUNDS"); do
    local hash cpu0 cpu1 m0 m1
    hash=$(taskset -c 0 "$bin/hash-baseline" --threads 1 --seconds "$SLICE")
    m0=$(hash_cpu "$url")
    cpu0=$(awk '{print $14 + $15}' "/proc/$PID/stat")
    BENCH_USER=admin BENCH_PASSWORD="$PASSWORD" BENCH_CLIENT_ID=console BENCH_CLIENT_SECRET=console-secret \
      taskset -c 1 wrk -t1 -c"$CONC" -d"${SLICE}s" -s bench/password.lua "$url/oauth/token" >"$dir/wrk.txt"
    cpu1=$(awk '{print $14 + $15}' "/proc/$PID/stat")
    m1=$(hash_cpu "$url")
    python3 - "$bin" "$hash" "$dir/wrk.txt" "$cpu0" "$cpu1" "$(getconf CLK_TCK)" $m0 $m1 <<'PY'
import json, re, sys
bin_dir, hash_run, wrk = sys.argv[1], json.loads(sys.argv[2]), open(sys.argv[3]).read()
cpu = (int(sys.argv[5]) - int(sys.argv[4])) / int(sys.argv[6])
s0, n0, s1, n1 = float(sys.argv[7]), int(sys.argv[8]), float(sys.argv[9]), int(sys.argv[10])
logins = int(re.search(r"(\d+) requests in", wrk).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
own = (cpu / logins) / ((s1 - s0) / (n1 - n0)) - 1 if n1 > n0 else float("nan")
print(f"{bin_dir}: {logins} logins, own CPU beyond the hash {own:+.1%} "
      f"(hash {(s1 - s0) / max(n1 - n0, 1) * 1000:.2f} ms, login {cpu / logins * 1000:.2f} ms); "
      f"against hash-baseline {hash_run['per_second'] / rps - 1:+.1%} throughput"
      + (f"; {bad.group(1)} FAILED answers" if bad else ""))
PY
  done
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=""
  if [ -n "$DB" ]; then
    psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS $DB" >/dev/null
    DB=""
  fi
}

echo "== password grant, $BACKEND, $CONC connections, $ROUNDS rounds of ${SLICE}s per build and pass"
for pass in 1 2; do
  for bin in "$@"; do
    one_build "$bin"
  done
done
