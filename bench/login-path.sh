#!/usr/bin/env bash
# The password login's own path, without the cost of its hash: the server's CPU per login when
# the account's stored hash is argon2id with m=8 KiB, t=1 (about 10 µs instead of 15-20 ms).
# For finding what a login costs beyond the hash (store calls, HTTP, token signing) and whether
# it grows as logins accumulate; bench/password.sh measures the real thing. Each round also
# splits the CPU by thread: the runtime's threads (`tokio-rt-worker`, which also run the hashes)
# and SQLite's connection threads (`sqlx-sqlite-wor`).
#
#   bench/login-path.sh                                  # SQLite, multipleLogin: false
#   MULTIPLE_LOGIN=true bench/login-path.sh
#   BACKEND=postgres bench/login-path.sh                 # a scratch database, and Redis
#   HASH=real bench/login-path.sh                        # the real argon2id hash: the same split
#                                                        # beside the hashes' own CPU
#
# Knobs: ROUNDS (default 3, back to back on one server, so growth shows), SLICE (seconds,
# default 4), CONC (connections, default 4). Server on CPU 0, wrk on CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${BACKEND:-sqlite}"
ROUNDS="${ROUNDS:-3}"
SLICE="${SLICE:-4}"
CONC="${CONC:-4}"
MULTIPLE_LOGIN="${MULTIPLE_LOGIN:-false}"
PASSWORD='Bench-Passw0rd!'
# argon2id, m=8 KiB, t=1, p=1, of $PASSWORD.
CHEAP_HASH='$argon2id$v=19$m=8,t=1,p=1$+0gn2/ZdNmh2xe23vDpVpA$CXMFTFzq3iw25rWgRKqIqo6S9wtTwUwgwC+94Z6OcXE'
command -v wrk >/dev/null || { echo "bench/login-path.sh needs wrk" >&2; exit 1; }
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release -q -p portcullis

WORK=$(mktemp -d)
PID=""
DB=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  [ -n "$DB" ] && psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/config"
cat >"$WORK/config/kubesphere.yaml" <<YAML
authentication:
  jwtSecret: bench-secret-0123456789
  multipleLogin: $MULTIPLE_LOGIN
  oauthOptions:
    clients:
    - name: console
      secret: console-secret
      trusted: true
YAML
redis=""
if [ "$BACKEND" = postgres ]; then
  DB="portcullis_loginpath_$$"
  psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE $DB" >/dev/null
  database="postgres://postgres@127.0.0.1:5432/$DB"
  redis="redis://127.0.0.1:6379/9"
  set_hash() { psql "$database" -qc "UPDATE users SET password_hash = '$CHEAP_HASH' WHERE name = 'admin'"; }
else
  database="sqlite://$WORK/portcullis.db"
  set_hash() { sqlite3 "$WORK/portcullis.db" "UPDATE users SET password_hash = '$CHEAP_HASH' WHERE name = 'admin'"; }
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
PORTCULLIS_ADMIN_PASSWORD="$PASSWORD" PORTCULLIS_DATA_DIR="$WORK" PORTCULLIS_DATABASE="$database" \
  PORTCULLIS_REDIS="$redis" RUST_LOG=warn \
  taskset -c 0 target/release/portcullis serve --config "$WORK/config/kubesphere.yaml" --listen "127.0.0.1:$port" \
  >"$WORK/stdout" 2>"$WORK/stderr" &
PID=$!
for _ in $(seq 1 200); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.05; done
curl -sf "$url/readyz" >/dev/null || { cat "$WORK/stderr" >&2; exit 1; }
[ "${HASH:-cheap}" = real ] || set_hash
curl -sf -u console:console-secret -d grant_type=password -d username=admin -d "password=$PASSWORD" \
  "$url/oauth/token" | grep -q access_token

ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
# Clock ticks per thread name, one "name ticks" line each (threads that ended are not counted).
thread_ticks() {
  for t in /proc/"$PID"/task/*; do
    printf '%s %s\n' "$(tr ' ' _ <"$t/comm")" "$(awk '{print $14 + $15}' "$t/stat")"
  done | awk '{s[$1] += $2} END {for (n in s) print n, s[n]}'
}
hash_cpu() {
  curl -sf "$url/metrics" | awk '/^portcullis_password_hash_cpu_seconds_sum/ {print $2; f=1} END {if (!f) print 0}'
}
echo "== login path, $BACKEND, multipleLogin: $MULTIPLE_LOGIN, $CONC connections, $ROUNDS rounds of ${SLICE}s"
for r in $(seq 1 "$ROUNDS"); do
  t0=$(ticks) h0=$(hash_cpu) th0=$(thread_ticks)
  out=$(BENCH_USER=admin BENCH_PASSWORD="$PASSWORD" BENCH_CLIENT_ID=console BENCH_CLIENT_SECRET=console-secret \
    taskset -c 1 wrk -t1 -c"$CONC" -d"${SLICE}s" -s bench/password.lua "$url/oauth/token")
  t1=$(ticks) h1=$(hash_cpu) th1=$(thread_ticks)
  logins=$(echo "$out" | awk '/requests in/ {print $1}')
  rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  bad=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  python3 - "$rate" "$t0" "$t1" "$h0" "$h1" "$logins" "${bad:-0}" "$(getconf CLK_TCK)" "$r" "$th0" "$th1" <<'PY'
import sys
rate, t0, t1, h0, h1, logins, bad, tck, r, th0, th1 = sys.argv[1:]
n, tck = int(logins), int(tck)
cpu = (int(t1) - int(t0)) / tck
hashed = float(h1) - float(h0)
def parse(text):
    return {line.split()[0]: int(line.split()[1]) for line in text.splitlines() if line.strip()}
before, after = parse(th0), parse(th1)
split = ", ".join(
    f"{name} {(after[name] - before.get(name, 0)) / tck / n * 1e6:,.0f}"
    for name in sorted(after) if after[name] > before.get(name, 0))
print(f"round {r}: {float(rate):,.0f} logins/s, server CPU per login {cpu / n * 1e6:,.0f} µs "
      f"({(cpu - hashed) / n * 1e6:,.0f} µs beyond its hash; by thread, µs: {split}), errors {bad}")
PY
done
