"""Figures of bench/scale.sh: parses its wrk outputs and server logs.

  report.py collect WORK BACKEND ROUNDS   -> WORK/BACKEND.json (one backend's figures)
  report.py write WORK OUT QUICK USERS RECORDS COMMAND
                                          -> OUT (JSON) and, unless QUICK, the table between the
                                             scale markers in docs/performance.md
"""

import json
import os
import platform
import statistics
import sys
from datetime import datetime

FIGURES = {
    "review": "TokenReview",
    "password": "password grant",
    "records": "login records page (`loginrecords?limit=10`)",
    "userinfo": "`/oauth/userinfo`",
}
BACKENDS = {"sqlite": "SQLite", "postgres": "PostgreSQL + Redis"}


def wrk(path):
    """Requests/s, p99 in ms and the count of non-2xx answers and socket errors of one wrk run."""
    out = {"rps": None, "p99_ms": None, "errors": 0}
    for line in open(path):
        p = line.split()
        if line.startswith("Requests/sec:"):
            out["rps"] = float(p[1])
        elif len(p) == 2 and p[0] == "99%":
            for unit, mul in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
                if p[1].endswith(unit):
                    out["p99_ms"] = float(p[1][: -len(unit)]) * mul
                    break
        elif line.startswith("Non-2xx or 3xx responses:"):
            out["errors"] += int(p[-1])
        elif line.strip().startswith("Socket errors:"):
            out["errors"] += sum(int(x.strip(",")) for x in p[2::2] if x.strip(",").isdigit())
    return out


def log_ms(ts):
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


def retention(work, server):
    """When the server started serving, when its start-up retention run ended, what it deleted."""
    start = end = deleted = error = None
    for line in open(f"{work}/{server}.log"):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        msg = e.get("message", "")
        if msg == "portcullis is serving" and start is None:
            start = log_ms(e["timestamp"])
        elif msg == "login records pruned by retention" and end is None:
            end, deleted = log_ms(e["timestamp"]), int(e["deleted"])
        elif msg.startswith("login-record retention failed"):
            error = e.get("error", msg)
    return start, end, deleted, error


def collect(work, backend, rounds):
    small, large = f"{backend}_small", f"{backend}_large"
    out = {"figures": {}}
    for kind in FIGURES:
        runs = [(wrk(f"{work}/{small}_{kind}_r{r}.txt"), wrk(f"{work}/{large}_{kind}_r{r}.txt"))
                for r in range(1, rounds + 1)]
        out["figures"][kind] = {
            "fresh_rps": statistics.median(s["rps"] for s, _ in runs),
            "large_rps": statistics.median(l["rps"] for _, l in runs),
            "ratio": statistics.median(l["rps"] / s["rps"] for s, l in runs),
            "fresh_p99_ms": statistics.median(s["p99_ms"] for s, _ in runs),
            "large_p99_ms": statistics.median(l["p99_ms"] for _, l in runs),
            "errors": sum(s["errors"] + l["errors"] for s, l in runs),
            "rounds": [{"fresh_rps": s["rps"], "large_rps": l["rps"]} for s, l in runs],
        }
    start, end, deleted, error = retention(work, large)
    during = {"review": [], "password": []}
    for line in open(f"{work}/{large}.during"):
        kind, i, ended = line.split()
        if end is not None and int(ended) <= end:
            during[kind].append(wrk(f"{work}/{large}_during_{kind}_{i}.txt"))
    job = {"seconds": (end - start) / 1000 if start and end else None, "deleted": deleted,
           "error": error}
    for kind, runs in during.items():
        steady = out["figures"][kind]["large_rps"]
        rps = statistics.median(r["rps"] for r in runs) if runs else None
        job[f"{kind}_during_rps"] = rps
        job[f"{kind}_during_slices"] = len(runs)
        job[f"{kind}_during_ratio"] = rps / steady if rps else None
        job[f"{kind}_during_errors"] = sum(r["errors"] for r in runs)
    runs = open(f"{work}/{large}.retention_runs").read().split()
    job["runs_during_benchmark"] = int(float(runs[0])) if runs else None
    out["retention"] = job
    out["seed_seconds"] = int(open(f"{work}/{backend}.seed_s").read())
    out["large_db_bytes"] = int(open(f"{work}/{backend}.db_bytes").read())
    json.dump(out, open(f"{work}/{backend}.json", "w"), indent=2)


def fmt(v, unit=""):
    return "n/a" if v is None else f"{v:,.0f}{unit}" if v >= 100 else f"{v:,.1f}{unit}"


def ratio(v):
    return "n/a" if v is None else f"{v:.2f}"


def table(r):
    rows = ["| backend | figure | fresh database | large database | large / fresh |",
            "|---|---|---|---|---|"]
    for b, label in BACKENDS.items():
        if b not in r["backends"]:
            continue
        x = r["backends"][b]
        for kind, name in FIGURES.items():
            f = x["figures"][kind]
            unit = " logins/s" if kind == "password" else " req/s"
            rows.append(f"| {label} | {name} | {fmt(f['fresh_rps'], unit)}, p99 {f['fresh_p99_ms']:.1f} ms "
                        f"| {fmt(f['large_rps'], unit)}, p99 {f['large_p99_ms']:.1f} ms | **{ratio(f['ratio'])}** |")
        j = x["retention"]
        secs = "n/a" if j["seconds"] is None else f"{j['seconds']:.1f}"
        rows.append(f"| {label} | retention job (start-up run) | | {fmt(j['deleted'])} records deleted in "
                    f"{secs} s | |")
        for kind in ("review", "password"):
            rows.append(f"| {label} | {FIGURES[kind]} while the job runs ({j[f'{kind}_during_slices']} slices) | "
                        f"| {fmt(j[f'{kind}_during_rps'])} /s | **{ratio(j[f'{kind}_during_ratio'])}** of after |")
        rows.append(f"| {label} | seeding the large database | | {x['seed_seconds']} s, "
                    f"{x['large_db_bytes'] / 2**30:.1f} GiB | |")
    return "\n".join(rows)


def write(work, out, quick, users, records, command):
    r = {
        "command": command,
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                                 if l.startswith("model name")), "")},
        "when": datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        "users": int(users), "records": int(records),
        "backends": {b: json.load(open(f"{work}/{b}.json")) for b in BACKENDS
                     if os.path.exists(f"{work}/{b}.json")},
    }
    json.dump(r, open(out, "w"), indent=2)
    md = table(r)
    print(md)
    if quick == "1":
        return
    doc = "docs/performance.md"
    text = open(doc).read()
    begin, end = "<!-- scale:begin -->", "<!-- scale:end -->"
    a, b = text.index(begin) + len(begin), text.index(end)
    note = (f"\n\nCommand: `{command}`, {r['when']}. Machine: {r['machine']['cpus']} CPUs "
            f"({r['machine']['cpu']}), Linux {r['machine']['kernel']}; server pinned to CPU 0, wrk to "
            f"CPU 1. Large database: {r['users']:,} users, {r['records']:,} login records.\n\n")
    open(doc, "w").write(text[:a] + note + md + "\n\n" + text[b:])


if __name__ == "__main__":
    if sys.argv[1] == "collect":
        collect(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        write(*sys.argv[2:8])
