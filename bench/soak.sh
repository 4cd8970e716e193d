#!/usr/bin/env bash
# Portcullis soak (issue 9, item 5): a bounded mixed load held for DURATION seconds against the
# release binary, on SQLite and then on PostgreSQL + Redis, with zero unexpected errors and flat
# memory as the pass criteria.
#
# The load (bench/src/soak.rs, binary `soak`): 16 sessions over 8 users, each choosing by weight
# 100 TokenReviews : 5 refreshes : 1 logout (+ check that the token is refused + a new password
# login). The server is pinned to CPU 0 and the load to CPU 1, loopback only; its RSS is read every
# 2 s from /proc. Writes bench/results/soak-{sqlite,postgres_redis}.json and the summary between
# the soak markers of docs/performance.md. Stops every process it started, by pid.
# Usage: bench/soak.sh [DURATION_SECONDS] (default 600). PARALLEL=1 soaks both backends at the
# same time (both servers on CPU 0, both loads on CPU 1: half the time, half the throughput each).
# Exit status 1 if any run had an unexpected error.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-600}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p portcullis -p portcullis-bench
BIN="$CARGO_TARGET_DIR/release"
WORK="$(mktemp -d)"
DBS=()
cleanup() {
  for f in "$WORK"/*/pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  for d in "${DBS[@]}"; do psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/kubesphere.yaml" <<YAML
authentication:
  authenticateRateLimiterMaxTries: 10
  authenticateRateLimiterDuration: 10m
  multipleLogin: true
  jwtSecret: soak-secret-0123456789
  oauthOptions:
    accessTokenMaxAge: 2h
    accessTokenInactivityTimeout: 2h
YAML

USERS=()
for i in $(seq 1 8); do USERS+=(--user "soak$i:soak-Passw0rd-$i"); done
mkdir -p bench/results
FAILED=0

# soak NAME DATABASE_URL [REDIS_URL]
soak() {
  local name="$1" db="$2" redis="${3:-}"
  local dir="$WORK/$name"; mkdir -p "$dir"
  export PORTCULLIS_DATA_DIR="$dir" PORTCULLIS_DATABASE="$db" PORTCULLIS_CONFIG="$WORK/kubesphere.yaml"
  for i in $(seq 1 8); do
    RUST_LOG=warn "$BIN/portcullis" user add "soak$i" --password "soak-Passw0rd-$i" >/dev/null
  done
  PORTCULLIS_REDIS="$redis" PORTCULLIS_LOG_FORMAT=json RUST_LOG=warn,portcullis=info \
    taskset -c 0 "$BIN/portcullis" serve --listen 127.0.0.1:0 >"$dir/stdout" 2>"$dir/stderr" &
  local pid=$! rc=0
  echo "$pid" >"$dir/pid"
  local addr=""
  for _ in $(seq 1 200); do
    addr=$(grep -o '"listen":"[^"]*"' "$dir/stderr" 2>/dev/null | head -n1 | cut -d'"' -f4 || true)
    [ -n "$addr" ] && break
    sleep 0.05
  done
  [ -n "$addr" ] || { echo "portcullis ($name) did not start:" >&2; cat "$dir/stderr" >&2; exit 1; }
  echo "== soak on $name for ${DURATION}s (server pid $pid)"
  taskset -c 1 "$BIN/soak" --url "http://$addr" --pid "$pid" --seconds "$DURATION" "${USERS[@]}" \
    >"bench/results/soak-$name.json" || rc=1
  grep -c '"ERROR"' "$dir/stderr" >"$dir/errors" || true
  python3 - "bench/results/soak-$name.json" "$dir/errors" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["server_error_log_lines"] = int(open(sys.argv[2]).read().strip() or 0)
json.dump(r, open(sys.argv[1], "w"), indent=2)
PY
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
  unset PORTCULLIS_DATA_DIR PORTCULLIS_DATABASE PORTCULLIS_CONFIG
  return "$rc"
}

RUNS=("sqlite sqlite://$WORK/sqlite/portcullis.db")
if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  DB="portcullis_soak_$$"
  psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE $DB" >/dev/null
  DBS+=("$DB")
  RUNS+=("postgres_redis postgres://postgres@127.0.0.1:5432/$DB redis://127.0.0.1:6379/9")
fi
if [ "${PARALLEL:-0}" = 1 ]; then
  JOBS=()
  for run in "${RUNS[@]}"; do
    # shellcheck disable=SC2086 # the run's words are its arguments
    (soak $run) &
    JOBS+=($!)
  done
  for j in "${JOBS[@]}"; do wait "$j" || FAILED=1; done
else
  # shellcheck disable=SC2086
  for run in "${RUNS[@]}"; do soak $run || FAILED=1; done
fi

python3 - "$DURATION" <<'PY'
import json, os, sys, platform, subprocess, datetime
duration = int(sys.argv[1])
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
rows = ["| backend | duration | requests (req/s) | logins / refreshes / reviews / logouts | unexpected errors | p99 review / refresh / login | RSS first → last minute |",
        "|---|---|---|---|---|---|---|"]
for name, label in (("sqlite", "SQLite"), ("postgres_redis", "PostgreSQL + Redis")):
    path = f"bench/results/soak-{name}.json"
    if not os.path.exists(path):
        continue
    r = json.load(open(path))
    o = r["ops"]
    first, last = r["rss_first_window_kib"] or 0, r["rss_last_window_kib"] or 0
    growth = (r["rss_growth"] - 1) * 100 if r["rss_growth"] else float("nan")
    rows.append(f"| {label} | {r['elapsed_s']:.0f} s | {r['requests']:,} ({r['requests_per_s']:,.0f}/s) | "
                f"{o['login']['count']:,} / {o['refresh']['count']:,} / {o['verify']['count']:,} / {o['logout']['count']:,} | "
                f"{r['unexpected_errors']} (server ERROR log lines: {r.get('server_error_log_lines', 0)}) | "
                f"{o['verify']['p99_ms']:.1f} / {o['refresh']['p99_ms']:.1f} / {o['login']['p99_ms']:.0f} ms | "
                f"{first/1024:.1f} → {last/1024:.1f} MiB ({growth:+.1f}%) |")
when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
note = (f"\n\nRun {when}: `bench/soak.sh {duration}`, release build; {os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}; "
        "server pinned to CPU 0, load to CPU 1; 16 sessions over 8 users, mix 100 reviews : 5 refreshes : 1 logout + login. "
        "RSS sampled every 2 s; first and last minute compared."
        + (" Both backends soaked at the same time (PARALLEL=1), sharing those CPUs." if os.environ.get("PARALLEL") == "1" else "")
        + "\n\n")
md = open("docs/performance.md").read()
start, end = "<!-- soak:begin -->", "<!-- soak:end -->"
a, b = md.index(start) + len(start), md.index(end)
table = "\n".join(rows)
open("docs/performance.md", "w").write(md[:a] + note + table + "\n\n" + md[b:])
print(table)
PY
exit "$FAILED"
