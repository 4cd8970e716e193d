"""Turns the raw outputs of bench/run.sh into bench/results/latest.json, the tables between the
bench markers of docs/performance.md and docs/images/performance.png.

Usage: report.py RAW_DIR [--no-docs]. Every figure is the median over the rounds; every ratio is
the median of the per-round ratios (subject and baseline measured in the same round). Exits 1,
after writing everything, when any request failed: a run with errors is not a result.
"""

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = {"sqlite": "SQLite", "postgres_redis": "PostgreSQL + Redis"}
# name, label, load tool, operation unit
SCENARIOS = [
    ("tokenreview", "TokenReview", "wrk", "req/s"),
    ("userinfo", "userinfo", "wrk", "req/s"),
    ("introspection", "introspection", "wrk", "req/s"),
    ("client_credentials", "client_credentials grant", "lg", "grants/s"),
    ("refresh_token", "refresh_token grant", "lg", "grants/s"),
    ("refresh_token_es256", "refresh_token grant, ES256 ID tokens", "lg", "grants/s"),
    ("authorization_code", "authorization_code (authorize + token, PKCE)", "lg", "flows/s"),
    ("federated_login", "federated login (start + callback)", "lg", "logins/s"),
]
VERIFICATION = {"tokenreview", "userinfo", "introspection"}
PEER_TARGET = {"client_credentials": 8, "refresh_token": 8, "refresh_token_es256": 8, "introspection": 10,
               "userinfo": 10}


def wrk(path):
    """requests/s, p50 and p99 in ms, and errors (non-2xx/3xx answers and socket errors) of a wrk output."""
    out = {"errors": 0}
    for line in open(path):
        p = line.split()
        if "requests in" in line:
            out["requests"] = int(p[0])
        elif line.startswith("Requests/sec:"):
            out["rps"] = float(p[1])
        elif len(p) == 2 and p[0] in ("50%", "99%"):
            out["p50_ms" if p[0] == "50%" else "p99_ms"] = ms(p[1])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            out["errors"] += int(p[-1])
        elif line.strip().startswith("Socket errors:"):
            out["errors"] += sum(int(x.strip(",")) for x in p[3::2])
    return out


def ms(v):
    for unit, mul in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * mul
    return float(v)


def loadgen(path):
    j = json.load(open(path))
    return {"rps": j["ops_per_s"], "p50_ms": j["p50_ms"], "p99_ms": j["p99_ms"], "errors": j["errors"],
            "error_samples": j["error_samples"], "requests_per_op": j["requests"] / max(j["ops"], 1), "raw": j}


def read(path, tool):
    return wrk(path) if tool == "wrk" else loadgen(path)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def load_json(path):
    return json.load(open(path)) if path.exists() else {}


def backend(raw, meta):
    rounds = range(1, meta["rounds"] + 1)
    bare = {"wrk": [wrk(raw / f"bare_wrk_r{r}.txt") for r in rounds],
            "lg": [loadgen(raw / f"bare_lg_r{r}.json") for r in rounds]}
    res = {"bare": {t: {"rps": med(x["rps"] for x in v), "p99_ms": med(x["p99_ms"] for x in v),
                        "errors": sum(x["errors"] for x in v)} for t, v in bare.items()}}
    for name, _, tool, _ in SCENARIOS:
        subj = [read(raw / f"{name}_portcullis_r{r}.{'txt' if tool == 'wrk' else 'json'}", tool) for r in rounds]
        s = {"tool": tool, "rps": med(x["rps"] for x in subj), "p50_ms": med(x["p50_ms"] for x in subj),
             "p99_ms": med(x["p99_ms"] for x in subj), "errors": sum(x["errors"] for x in subj),
             "ratio_to_bare": med(x["rps"] / b["rps"] for x, b in zip(subj, bare[tool])),
             "bare_rps": med(b["rps"] for b in bare[tool]),
             "rounds": [{"rps": x["rps"], "bare_rps": b["rps"]} for x, b in zip(subj, bare[tool])]}
        samples = [e for x in subj for e in x.get("error_samples", [])]
        if samples:
            s["error_samples"] = samples[:5]
        if tool == "lg":
            s["requests_per_op"] = med(x["requests_per_op"] for x in subj)
        peer_file = raw / f"{name}_peer_r1.{'txt' if tool == 'wrk' else 'json'}"
        if meta["peer"] and peer_file.exists():
            peer = [read(raw / f"{name}_peer_r{r}.{'txt' if tool == 'wrk' else 'json'}", tool) for r in rounds]
            s["peer"] = {"rps": med(x["rps"] for x in peer), "p99_ms": med(x["p99_ms"] for x in peer),
                         "errors": sum(x["errors"] for x in peer),
                         "error_samples": [e for x in peer for e in x.get("error_samples", [])][:5]}
            s["ratio_to_peer"] = med(x["rps"] / p["rps"] for x, p in zip(subj, peer) if p["rps"])
        if name == "federated_login":
            users, prev, first = meta["federated_users"], 0, 0
            for x in subj:
                nxt = x["raw"]["next_user"]
                first += min(nxt, users) - min(prev, users)
                prev = nxt
            total = sum(x["raw"]["ops"] for x in subj)
            s["first_logins"], s["returning_logins"] = first, max(total - first, 0)
        res[name] = s
    # Every refresh with `openid` signs an RS256 ID token: the signatures per second on the same
    # core, in the same rounds, are the refresh grant's ceiling.
    rs256 = [load_json(raw / f"rs256_r{r}.json") for r in rounds]
    if all(rs256):
        refresh = res["refresh_token"]
        refresh["rs256_per_s"] = med(x["per_second"] for x in rs256)
        refresh["ratio_to_rs256"] = med(x["rps"] / c["per_second"] for x, c in
                                        zip([read(raw / f"refresh_token_portcullis_r{r}.json", "lg") for r in rounds], rs256))
    pw = [wrk(raw / f"password_portcullis_r{r}.txt") for r in rounds]
    hashes = [json.load(open(raw / f"hash_r{r}.json"))["per_second"] for r in rounds]
    hash_runs = [json.load(open(raw / f"hash_r{r}.json")) for r in rounds]
    cpu = [load_json(raw / f"password_cpu_r{r}.json") for r in rounds]
    # CPU per login over CPU per verification, both measured on CPU 0 in the same round.
    cpu_ratios = [(c["server_cpu_ticks"] / c["ticks_per_second"] / x["requests"]) / (h["cpu_seconds"] / h["verifications"])
                  for x, h, c in zip(pw, hash_runs, cpu) if c and x.get("requests") and h.get("cpu_seconds")]
    # The server's CPU per login over the CPU its own hashes took (its histogram's sum per count),
    # both counted in the server over the same slice: no second binary, no second process.
    own_ratios = []
    for x, c in zip(pw, cpu):
        if not (c and x.get("requests") and c.get("hash_cpu_after")):
            continue
        (s0, n0), (s1, n1) = c["hash_cpu_before"], c["hash_cpu_after"]
        if n1 > n0 and s1 > s0:
            own_ratios.append((c["server_cpu_ticks"] / c["ticks_per_second"] / x["requests"]) / ((s1 - s0) / (n1 - n0)))
    res["password_grant"] = {"rps": med(x["rps"] for x in pw), "p99_ms": med(x["p99_ms"] for x in pw),
                             "own_cpu_overhead": med(r - 1 for r in own_ratios) if own_ratios else None,
                             "hash_per_s": med(hashes), "errors": sum(x["errors"] for x in pw),
                             "overhead_vs_hash": med(1 - x["rps"] / h for x, h in zip(pw, hashes)),
                             "cpu_overhead_vs_hash": med(r - 1 for r in cpu_ratios) if cpu_ratios else None,
                             "rounds": [{"rps": x["rps"], "hash_per_s": h} for x, h in zip(pw, hashes)]}
    mem = {**load_json(raw / "memory_idle.json"), **load_json(raw / "memory_load.json"), **load_json(raw / "memory_end.json")}
    res["memory_mib"] = {k.replace("_kb", ""): v / 1024 for k, v in mem.items()}
    return res


def machine():
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    return {"cpus": os.cpu_count(), "cpu": cpu, "kernel": platform.release()}


def cpu_note(p):
    """The CPU-time form of the password grant's overhead, when measured."""
    c, o = p.get("cpu_overhead_vs_hash"), p.get("own_cpu_overhead")
    note = "" if c is None else f"; CPU per login {c * 100:+.1f}% over CPU per hash"
    return note if o is None else f"{note}; in the server, CPU per login {o * 100:+.1f}% over its own hash's CPU"


def fmt(v, digits=0):
    return "-" if v is None else f"{v:,.{digits}f}"


def mib(v):
    return "-" if v is None else f"{v:,.1f} MiB"


def verdict(ok):
    return "yes" if ok else "**no**"


def tables(r):
    rows = ["| scenario | backend | throughput | p50 | p99 | ratio to bare axum (its rate) | Portcullis / oidc-provider (its rate) | errors |",
            "|---|---|---|---|---|---|---|---|"]
    for name, label, tool, unit in SCENARIOS:
        for b, blabel in BACKENDS.items():
            if b not in r:
                continue
            s = r[b][name]
            peer = s.get("peer")
            vs = (f"{s['ratio_to_peer']:.1f}x ({fmt(peer['rps'])}/s; target {PEER_TARGET[name]}x: {verdict(s['ratio_to_peer'] >= PEER_TARGET[name])})"
                  if peer and name in PEER_TARGET and s.get("ratio_to_peer") else "")
            if s.get("rs256_per_s"):
                c = s["rs256_per_s"]
                ceiling = f"{c / peer['rps']:.1f}x oidc-provider" if peer and peer.get("rps") else "-"
                vs += (f"; RS256 ceiling on this core {fmt(c)} signatures/s = {ceiling}, "
                       f"this grant at {s['ratio_to_rs256'] * 100:.0f}% of it")
            extra = ""
            if name == "federated_login":
                extra = f" ({s['first_logins']:,} first logins, {s['returning_logins']:,} returning)"
            rows.append(f"| {label}{extra} | {blabel} | {fmt(s['rps'])} {unit} | {s['p50_ms']:.2f} ms | {s['p99_ms']:.2f} ms | "
                        f"{s['ratio_to_bare']:.2f} ({fmt(s['bare_rps'])}/s, {'wrk' if tool == 'wrk' else 'loadgen'}) | {vs} | "
                        f"{s['errors'] + (peer['errors'] if peer else 0)} |")
    for b, blabel in BACKENDS.items():
        if b in r:
            p = r[b]["password_grant"]
            rows.append(f"| password grant ({r['meta']['password_concurrency']} connections) | {blabel} | {p['rps']:.1f} logins/s | | {fmt(p['p99_ms'])} ms | "
                        f"overhead {p['overhead_vs_hash'] * 100:.1f}% beyond the hash ({p['hash_per_s']:.1f} argon2id/s, same rounds){cpu_note(p)} | | {p['errors']} |")
    scen = "\n".join(rows)

    def mem(b, key):
        return r.get(b, {}).get("memory_mib", {}).get(key)
    peer = r.get("oidc_provider", {})
    su, psu = r.get("startup", {}), peer.get("startup", {})
    res = ["| | Portcullis, SQLite | Portcullis, PostgreSQL + Redis | oidc-provider | target |", "|---|---|---|---|---|",
           f"| RSS idle (at ready) | {mib(mem('sqlite', 'rss_idle'))} | {mib(mem('postgres_redis', 'rss_idle'))} | {mib(peer.get('rss_idle_mib'))} | < 20 MB |",
           f"| RSS idle (settled, 12 s after ready) | {mib(mem('sqlite', 'rss_idle_settled'))} | {mib(mem('postgres_redis', 'rss_idle_settled'))} | | < 20 MB |",
           f"| RSS peak under the verification load | {mib(mem('sqlite', 'rss_peak_verification'))} | {mib(mem('postgres_redis', 'rss_peak_verification'))} | {mib(peer.get('rss_peak_verification_mib'))} | < 64 MB |",
           f"| RSS peak over all scenarios | {mib(mem('sqlite', 'rss_peak_all'))} | {mib(mem('postgres_redis', 'rss_peak_all'))} | | |",
           f"| start-up to ready, median of {su.get('runs', '-')} | {fmt(su.get('median_ms'), 1)} ms (`/readyz`) | | {fmt(psu.get('median_ms'), 1)} ms (discovery) | < 200 ms |",
           f"| release binary | {r['binary_mib']:.1f} MiB | | | |"]
    return scen, "\n".join(res)


def plot(r, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [n for n, *_ in SCENARIOS]
    labels = [n.replace("_", "\n") for n in names]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [7, 4]})
    backends = [b for b in BACKENDS if b in r]
    w = 0.8 / max(len(backends), 1)
    for i, b in enumerate(backends):
        xs = [k + i * w for k in range(len(names))]
        ax1.bar(xs, [r[b][n]["ratio_to_bare"] for n in names], w, label=BACKENDS[b])
    ax1.axhline(0.6, color="grey", linestyle="--", linewidth=1, label="verification target 0.6")
    ax1.set_xticks([k + w * (len(backends) - 1) / 2 for k in range(len(names))], labels, fontsize=8)
    ax1.set_ylabel("ratio to the bare axum handler (same rounds)")
    ax1.set_title("Portcullis / bare axum ceiling")
    ax1.legend(fontsize=8)
    peer_names = [n for n in names if n in PEER_TARGET and any("ratio_to_peer" in r[b][n] for b in backends)]
    if peer_names:
        for i, b in enumerate(backends):
            xs = [k + i * w for k in range(len(peer_names))]
            ax2.bar(xs, [r[b][n].get("ratio_to_peer") or 0 for n in peer_names], w, label=BACKENDS[b])
        for k, n in enumerate(peer_names):
            ax2.hlines(PEER_TARGET[n], k - w / 2, k + w * len(backends) - w / 2, colors="grey", linestyles="--", linewidth=1)
        ax2.set_xticks([k + w * (len(backends) - 1) / 2 for k in range(len(peer_names))],
                       [n.replace("_", "\n") for n in peer_names], fontsize=8)
        ax2.set_ylabel("Portcullis / oidc-provider throughput")
        ax2.set_title("Portcullis / oidc-provider (dashed: target)")
        ax2.legend(fontsize=8)
    fig.suptitle(f"{r['meta']['command']} on {r['machine']['cpus']} CPUs ({r['machine']['cpu']}), {r['date']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    raw = Path(sys.argv[1])
    meta = json.load(open(raw / "meta.json"))
    r = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
         "machine": machine(), "meta": meta, "binary_mib": meta["binary_bytes"] / 2**20}
    for b in BACKENDS:
        if (raw / b).is_dir():
            r[b] = backend(raw / b, meta)
    r["startup"] = load_json(raw / "startup.json")
    if meta["peer"]:
        peer = {k.replace("_kb", "_mib"): v / 1024 for k, v in
                {**load_json(raw / "peer_memory_idle.json"), **load_json(raw / "peer_memory_load.json")}.items()}
        peer["startup"] = load_json(raw / "peer_startup.json")
        r["oidc_provider"] = peer
    errors = {f"{b}/{n}": v["errors"] + v.get("peer", {}).get("errors", 0)
              for b in BACKENDS if b in r for n, v in r[b].items() if isinstance(v, dict) and "errors" in v}
    errors = {k: v for k, v in errors.items() if v}
    r["errors"] = errors
    (ROOT / "bench/results").mkdir(parents=True, exist_ok=True)
    json.dump(r, open(ROOT / "bench/results/latest.json", "w"), indent=2)
    scen, res = tables(r)
    m = r["machine"]
    note = (f"Run {r['date']}, command `{meta['command']}`: {meta['rounds']} rounds of {meta['slice_s']}-second slices, "
            f"{meta['concurrency']} connections; machine {m['cpus']} CPUs ({m['cpu']}), Linux {m['kernel']}; "
            f"servers pinned to CPU 0, wrk and loadgen to CPU 1. Figures are medians over the rounds; ratios are "
            f"medians of the per-round ratios.")
    print(scen + "\n\n" + res)
    if "--no-docs" not in sys.argv:
        plot(r, ROOT / "docs/images/performance.png")
        md = (ROOT / "docs/performance.md").read_text()
        start, end = "<!-- bench:begin -->", "<!-- bench:end -->"
        a, b = md.index(start) + len(start), md.index(end)
        block = (f"\n\n{note}\n\n{scen}\n\n{res}\n\n![Ratios to the bare handler and to oidc-provider, per scenario and backend]"
                 f"(images/performance.png)\n\n")
        (ROOT / "docs/performance.md").write_text(md[:a] + block + md[b:])
    if errors:
        print(f"bench: requests failed, this run is not a result: {errors}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
