#!/usr/bin/env bash
# Portcullis benchmark driver (issue 2 scope: TokenReview and the password grant).
#
# Builds release binaries, starts each server on loopback pinned to CPU 0, drives it with wrk
# pinned to CPU 1, and reports every figure as a ratio to a baseline measured in the same run:
#   TokenReview req/s       / bare axum handler req/s   (target >= 0.5)
#   password grant logins/s / argon2id verifications/s  (target: overhead < 5%)
# Writes bench/results/latest.json and the table in docs/performance.md.
# Usage: bench/run.sh [DURATION_SECONDS] (default 10). Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
# Shared, noisy machines: the HTTP figures alternate baseline and subject in short slices and
# report the median of the per-round ratios, so a burst of other load hits both alike.
ROUNDS="${ROUNDS:-5}"
SLICE="${SLICE:-3}"
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p portcullis -p portcullis-bench
BIN="$CARGO_TARGET_DIR/release"
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

cat > "$WORK/kubesphere.yaml" <<YAML
authentication:
  authenticateRateLimiterMaxTries: 10
  authenticateRateLimiterDuration: 10m
  multipleLogin: true
  jwtSecret: bench-secret-0123456789
  oauthOptions:
    accessTokenMaxAge: 2h
    accessTokenInactivityTimeout: 2h
YAML

# start_server NAME DATABASE_URL [REDIS_URL] -> sets URL_<NAME>
start_portcullis() {
  local name="$1" db="$2" redis="${3:-}"
  local dir="$WORK/$name"; mkdir -p "$dir"
  PORTCULLIS_ADMIN_PASSWORD=bench-Admin-Passw0rd PORTCULLIS_DATA_DIR="$dir" PORTCULLIS_DATABASE="$db" \
    PORTCULLIS_REDIS="$redis" PORTCULLIS_LOG_FORMAT=json RUST_LOG=warn,portcullis=info \
    taskset -c 0 "$BIN/portcullis" serve --config "$WORK/kubesphere.yaml" --listen 127.0.0.1:0 \
    >"$dir/stdout" 2>"$dir/stderr" &
  PIDS+=($!)
  local addr=""
  for _ in $(seq 1 200); do
    addr=$(grep -o '"listen":"[^"]*"' "$dir/stderr" 2>/dev/null | head -n1 | cut -d'"' -f4 || true)
    [ -n "$addr" ] && break
    sleep 0.05
  done
  [ -n "$addr" ] || { echo "portcullis ($name) did not start:" >&2; cat "$dir/stderr" >&2; exit 1; }
  printf -v "URL_$name" 'http://%s' "$addr"
}

# rps FILE -> requests/sec ; p99 FILE -> 99th percentile latency in ms
rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
p99() { awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' "$1"; }
load() { taskset -c 1 wrk -t1 "$@" --latency; }

echo "== baseline: bare axum handler"
taskset -c 0 "$BIN/bare-axum" 127.0.0.1:0 >"$WORK/bare.addr" &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$WORK/bare.addr" ] && break; sleep 0.05; done
BARE="http://$(head -n1 "$WORK/bare.addr")"
TOKEN=x load -c32 -d"${DURATION}s" -s bench/tokenreview.lua "$BARE/" >"$WORK/bare.txt"
export TOKEN=x

echo "== TokenReview on SQLite (interleaved with the bare handler, $ROUNDS rounds)"
start_portcullis sqlite "sqlite://$WORK/sqlite/portcullis.db"
TOKEN=$(curl -sf -d grant_type=password -d username=admin -d password=bench-Admin-Passw0rd "$URL_sqlite/oauth/token" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
export TOKEN
curl -sf -H 'Content-Type: application/json' -d "{\"spec\":{\"token\":\"$TOKEN\"}}" "$URL_sqlite/oauth/authenticate" | grep -q '"authenticated":true'
for r in $(seq 1 "$ROUNDS"); do
  load -c32 -d"${SLICE}s" -s bench/tokenreview.lua "$BARE/" >"$WORK/bare_r$r.txt"
  load -c32 -d"${SLICE}s" -s bench/tokenreview.lua "$URL_sqlite/oauth/authenticate" >"$WORK/review_sqlite_r$r.txt"
done

echo "== password grant on SQLite, and the hash baseline"
export BENCH_USER=admin BENCH_PASSWORD=bench-Admin-Passw0rd
load -c4 -d"${DURATION}s" -s bench/password.lua "$URL_sqlite/oauth/token" >"$WORK/password_sqlite.txt"
HASH_JSON=$(taskset -c 0 "$BIN/hash-baseline" --threads 1 --seconds "$DURATION")

PG_OK=0
if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "== TokenReview on PostgreSQL + Redis"
  DB="portcullis_bench_$$"
  psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE $DB" >/dev/null
  start_portcullis postgres "postgres://postgres@127.0.0.1:5432/$DB" "redis://127.0.0.1:6379/9"
  TOKEN=$(curl -sf -d grant_type=password -d username=admin -d password=bench-Admin-Passw0rd "$URL_postgres/oauth/token" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  export TOKEN
  for r in $(seq 1 "$ROUNDS"); do
    load -c32 -d"${SLICE}s" -s bench/tokenreview.lua "$BARE/" >"$WORK/bare_pg_r$r.txt"
    load -c32 -d"${SLICE}s" -s bench/tokenreview.lua "$URL_postgres/oauth/authenticate" >"$WORK/review_pg_r$r.txt"
  done
  load -c4 -d"${DURATION}s" -s bench/password.lua "$URL_postgres/oauth/token" >"$WORK/password_pg.txt"
  PG_OK=1
fi

RSS_KB=$(ps -o rss= -p "${PIDS[1]}" | tr -d ' ')

HASH_RPS=$(echo "$HASH_JSON" | sed -E 's/.*"per_second":([0-9.]+).*/\1/')
mkdir -p bench/results
python3 - "$PG_OK" "$WORK" "$ROUNDS" <<PY
import json, sys, subprocess, platform, os
pg_ok, work, rounds = sys.argv[1] == "1", sys.argv[2], int(sys.argv[3])
import statistics
def rps(f):
    for l in open(f):
        if l.startswith("Requests/sec:"): return float(l.split()[1])
def p99(f):
    for l in open(f):
        p = l.split()
        if len(p) == 2 and p[0] == "99%":
            v = p[1]
            for unit, mul in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
                if v.endswith(unit): return float(v[:-len(unit)]) * mul
bare, hashps = rps(f"{work}/bare.txt"), float("$HASH_RPS")
def interleaved(subject, base):
    pairs = [(rps(f"{work}/{subject}_r{i}.txt"), rps(f"{work}/{base}_r{i}.txt")) for i in range(1, rounds + 1)]
    p99s = [p99(f"{work}/{subject}_r{i}.txt") for i in range(1, rounds + 1)]
    return {"rps": statistics.median(s for s, _ in pairs), "bare_rps": statistics.median(b for _, b in pairs),
            "ratio_to_bare": statistics.median(s / b for s, b in pairs), "p99_ms": statistics.median(p99s),
            "rounds": [{"rps": s, "bare_rps": b} for s, b in pairs]}
r = {
  "machine": {"cpus": os.cpu_count(), "cpu": (subprocess.run(["sh","-c","grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],capture_output=True,text=True).stdout.strip()), "kernel": platform.release()},
  "duration_s": int("$DURATION"),
  "bare_axum": {"rps": bare, "p99_ms": p99(f"{work}/bare.txt")},
  "hash_baseline_per_s": hashps,
  "sqlite": {"tokenreview": interleaved("review_sqlite", "bare"),
             "password_grant": {"rps": rps(f"{work}/password_sqlite.txt"), "p99_ms": p99(f"{work}/password_sqlite.txt")}},
  "rss_kb_after_load": int("$RSS_KB" or 0),
}
if pg_ok:
  r["postgres_redis"] = {"tokenreview": interleaved("review_pg", "bare_pg"),
                         "password_grant": {"rps": rps(f"{work}/password_pg.txt"), "p99_ms": p99(f"{work}/password_pg.txt")}}
for k in ("sqlite", "postgres_redis"):
  if k in r:
    r[k]["password_grant"]["overhead_vs_hash"] = 1 - r[k]["password_grant"]["rps"] / hashps
json.dump(r, open("bench/results/latest.json", "w"), indent=2)
rows = [f"| bare axum handler (ceiling) | {bare:,.0f} req/s | p99 {r['bare_axum']['p99_ms']:.2f} ms | 1.00 |",
        f"| argon2id verifications, 1 core (login ceiling) | {hashps:,.1f} /s | | 1.00 |"]
for k, label in (("sqlite", "SQLite"), ("postgres_redis", "PostgreSQL + Redis")):
  if k in r:
    t, p = r[k]["tokenreview"], r[k]["password_grant"]
    rows.append(f"| TokenReview, {label} (bare in the same rounds: {t['bare_rps']:,.0f} req/s) | {t['rps']:,.0f} req/s | p99 {t['p99_ms']:.2f} ms | {t['ratio_to_bare']:.2f} of bare (median of {rounds} interleaved rounds) |")
    rows.append(f"| password grant, {label} | {p['rps']:,.1f} logins/s | p99 {p['p99_ms']:.0f} ms | overhead {p['overhead_vs_hash']*100:.1f}% vs hash |")
table = "\n".join(["| scenario | throughput | latency | ratio |", "|---|---|---|---|"] + rows)
md = open("docs/performance.md").read()
start, end = "<!-- bench:begin -->", "<!-- bench:end -->"
a, b = md.index(start) + len(start), md.index(end)
note = f"\n\nMachine: {r['machine']['cpus']} CPUs ({r['machine']['cpu']}), Linux {r['machine']['kernel']}; server pinned to CPU 0, wrk to CPU 1; {r['duration_s']} s per figure. RSS of the SQLite server after its load: {r['rss_kb_after_load']/1024:.1f} MiB.\n\n"
open("docs/performance.md", "w").write(md[:a] + note + table + "\n\n" + md[b:])
print(table)
PY
