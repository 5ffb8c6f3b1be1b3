#!/usr/bin/env python3
"""Turns build/bench/results.jsonl (one JSON object per benchmark case) into docs/benchmarks.md and PNG plots.

Usage: bench_report.py RESULTS.jsonl OUT.md IMG_DIR [--meta META.json]

Every figure is printed beside its reference figure from shared/BENCHMARKS.md (or the in-run baseline) and the
ratio; each target of the issues is judged plainly (met / MISSED / not run). Plots need gnuplot; without it the
report says so and still lists every figure.
"""
import json
import math
import os
import shutil
import subprocess
import sys

# Reference figures of shared/BENCHMARKS.md (JavaScript peers, same machine kind). ops/s; latencies in µs.
REF = {
    "W3/hot_1": 3.0e6,
    "W3/distinct_10k": 1.5e6,
    "W4/get_hit_small": 10.7e6,
    "W4/get_clone": 75e3,
    "W4/set_evict": 5.0e6,
    "W5/hot_1/1": (2.4e3, 1000.0),
    "W5/hot_1/16": (8.7e3, 5600.0),
    "W5/hot_1/64": (9.4e3, 11400.0),
    "W5/distinct_10k/1": (2.2e3, 750.0),
    "W5/distinct_10k/16": (8.9e3, 3500.0),
    "W5/distinct_10k/64": (8.4e3, 9700.0),
    # W6: (ops/s, p50 µs or None, p99 µs or None)
    "W6/sequential/1": (355.0, 2800.0, None),
    "W6/sequential/32": (1.7e3, None, 29500.0),
    "W6/parallel/1": (466.0, 1170.0, None),
    "W6/parallel/32": (1.8e3, None, 25900.0),
}


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows


def fmt_rate(v):
    if v is None:
        return "–"
    if v >= 1e6:
        return f"{v / 1e6:.2f} M/s"
    if v >= 1e3:
        return f"{v / 1e3:.2f} k/s"
    return f"{v:.0f} /s"


def fmt_us(v):
    if v is None:
        return "–"
    if v >= 1000:
        return f"{v / 1000:.2f} ms"
    if v >= 1:
        return f"{v:.1f} µs"
    return f"{v * 1000:.0f} ns"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def verdict(ok):
    if ok is None:
        return "not run"
    return "met" if ok else "**MISSED**"


class Report:
    def __init__(self, rows, meta):
        self.rows = rows
        self.meta = meta
        self.out = []
        self.targets = []  # (workload, target text, figure text, ok or None)

    def w(self, s=""):
        self.out.append(s)

    def by(self, workload):
        return [r for r in self.rows if r.get("workload") == workload and "not_run" not in r]

    def not_run(self, workload):
        return [r for r in self.rows if r.get("workload") == workload and "not_run" in r]

    def section_not_run(self, workload):
        rows = self.not_run(workload)
        for r in rows:
            self.w(f"- **not run**: `{r.get('name', workload)}` — {r['not_run']}")
        if rows:
            self.w()

    # W1 ------------------------------------------------------------------------------------------------------
    def w1(self):
        self.w("## W1 — pipeline overhead (in-memory)")
        self.w()
        self.w("Six gates on in-memory stores, all passing; 1,000,000 decisions per round, 1 warm-up + 3 measured "
               "rounds, median round. No JavaScript reference; the target is the engine issue's ≤ 2 µs per decision "
               "single-threaded.")
        self.w()
        rows = self.by("W1")
        self.section_not_run("W1")
        if rows:
            self.w("| case | threads | caller | ns/decision | decisions/s | target | ratio to target |")
            self.w("|---|---|---|---|---|---|---|")
            for r in rows:
                ns = r.get("ns_per_decision")
                tgt = "≤ 2000 ns" if r.get("threads") == 1 else "–"
                self.w(f"| {r['name']} | {r.get('threads')} | {r.get('caller', '')} | {ns:.1f} | "
                       f"{fmt_rate(r.get('decisions_per_s'))} | {tgt} | {ratio(ns, 2000.0) if r.get('threads') == 1 else '–'} |")
            t1 = [r for r in rows if r.get("threads") == 1]
            if t1:
                ns = min(r["ns_per_decision"] for r in t1)
                self.targets.append(("W1", "≤ 2 µs per decision, 1 thread", f"{ns:.0f} ns", ns <= 2000))
        else:
            self.targets.append(("W1", "≤ 2 µs per decision, 1 thread", "–", None))
        self.w()

    # W2 ------------------------------------------------------------------------------------------------------
    def w2(self):
        self.w("## W2 — read-phase latency vs sequential")
        self.w()
        self.w("Four read-only gates waiting on Asio timers of 1, 2, 3 and 4 ms, then one stateful gate; "
               "concurrency 1, 200 decisions. The references are the sequential sum (10 ms) and the maximum "
               "(4 ms); the same four waits awaited one after another are measured in the same run.")
        self.w()
        rows = self.by("W2")
        self.section_not_run("W2")
        if rows:
            self.w("| case | decisions | p50 | p99 | max | p50 ÷ sequential sum (10 ms) | p50 ÷ max wait (4 ms) |")
            self.w("|---|---|---|---|---|---|---|")
            for r in rows:
                self.w(f"| {r['name']} | {r['ops']} | {fmt_us(r['p50_us'])} | {fmt_us(r['p99_us'])} | "
                       f"{fmt_us(r['max_us'])} | {ratio(r['p50_us'], 10000.0)} | {ratio(r['p50_us'], 4000.0)} |")
            pipe = [r for r in rows if r.get("mode") == "pipeline"]
            if pipe:
                p50 = pipe[0]["p50_us"]
                self.targets.append(("W2", "critical path, not sum: p50 ≤ 0.5× the 10 ms sequential sum",
                                     fmt_us(p50), p50 <= 5000))
        self.w()

    # W3 ------------------------------------------------------------------------------------------------------
    def w3(self):
        self.w("## W3 — in-process limiters")
        self.w()
        self.w("Limits effectively infinite, keys pre-created; 1,000,000 operations per round, 1 warm-up + 3 "
               "measured rounds, median round. Reference: RateLimiterMemory (one thread). `steady` reads "
               "CLOCK_MONOTONIC, `coarse` CLOCK_MONOTONIC_COARSE. Latency percentiles are per 1024-operation "
               "block means (timing single calls would cost more than the call).")
        self.w()
        rows = self.by("W3")
        self.section_not_run("W3")
        if rows:
            self.w("| limiter | keys | threads | clock | ops/s | ns/op | reference (1 thread) | ratio |")
            self.w("|---|---|---|---|---|---|---|---|")
            for r in rows:
                ref = REF.get(f"W3/{r['keys']}")
                self.w(f"| {r['limiter']} | {r['keys']} | {r['threads']} | {r.get('clock', '')} | "
                       f"{fmt_rate(r['ops_per_s'])} | {r.get('ns_per_op', 0):.1f} | {fmt_rate(ref)} | "
                       f"{ratio(r['ops_per_s'], ref)} |")
            tb1 = [r for r in rows if r["limiter"] == "token_bucket" and r["threads"] == 1]
            for keys in ("hot_1", "distinct_10k"):
                sel = [r for r in tb1 if r["keys"] == keys]
                if not sel:
                    continue
                best = max(sel, key=lambda r: r["ops_per_s"])
                ref = REF[f"W3/{keys}"]
                self.targets.append((
                    "W3", f"token bucket {keys}, 1 thread ≥ 10× reference ({fmt_rate(10 * ref)})",
                    f"{fmt_rate(best['ops_per_s'])} ({best.get('clock')} clock, {ratio(best['ops_per_s'], ref)})",
                    best["ops_per_s"] >= 10 * ref))
                if keys == "hot_1":
                    self.targets.append(("W3", "token bucket hot_1, 1 thread ≥ 20 M/s",
                                         fmt_rate(best["ops_per_s"]), best["ops_per_s"] >= 20e6))
        self.w()

    # W4 ------------------------------------------------------------------------------------------------------
    def w4(self):
        self.w("## W4 — caches")
        self.w()
        self.w("TTL LRU, capacity 1000, absolute TTL 5 min, filled before each round; median of 3 rounds after 1 "
               "warm-up. Reference: lru-cache (+ structuredClone for get_clone), one thread. Cases marked extra "
               "have no reference.")
        self.w()
        rows = self.by("W4")
        self.section_not_run("W4")
        targets = {"get_hit_small": 2.0, "get_clone": 5.0, "set_evict": 2.0}
        if rows:
            self.w("| case | threads | ops | ops/s | ns/op | p50 | p99 | reference (1 thread) | ratio |")
            self.w("|---|---|---|---|---|---|---|---|---|")
            for r in rows:
                ref = REF.get(f"W4/{r['name']}")
                self.w(f"| {r['name']} | {r['threads']} | {r['ops']} | {fmt_rate(r['ops_per_s'])} | "
                       f"{r.get('ns_per_op', 0):.1f} | {fmt_us(r.get('p50_us'))} | {fmt_us(r.get('p99_us'))} | "
                       f"{fmt_rate(ref)} | {ratio(r['ops_per_s'], ref)} |")
            for name, k in targets.items():
                sel = [r for r in rows if r["name"] == name and r["threads"] == 1]
                if not sel:
                    self.targets.append(("W4", f"{name}, 1 thread ≥ {k:g}× reference", "–", None))
                    continue
                v = sel[0]["ops_per_s"]
                ref = REF[f"W4/{name}"]
                ok = v >= k * ref and (name != "get_hit_small" or v >= 20e6)
                extra = " and ≥ 20 M/s" if name == "get_hit_small" else ""
                self.targets.append(("W4", f"{name}, 1 thread ≥ {k:g}× reference{extra}",
                                     f"{fmt_rate(v)} ({ratio(v, ref)})", ok))
        self.w()

    # W5 ------------------------------------------------------------------------------------------------------
    def w5(self):
        self.w("## W5 — Postgres limiter consume")
        self.w()
        self.w("The project's Postgres GCRA limiter, limit effectively infinite; before each case the table is "
               "cleared and warmed up; 20,000 measured consumes capped at 7 s. Reference: RateLimiterPostgres, "
               "pool of 8, one thread. Statements and round trips per consume are the pool's counters.")
        self.w()
        rows = self.by("W5")
        self.section_not_run("W5")
        if rows:
            self.w("| case | concurrency | pool | threads | ops | ops/s | reference | ratio | p50 | p99 | "
                   "reference p99 | statements/op | round trips/op |")
            self.w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
            for r in rows:
                ref = REF.get(f"W5/{r['case']}/{r['concurrency']}", (None, None))
                self.w(f"| {r['case']} | {r['concurrency']} | {r.get('pool_size')} | {r.get('client_threads')} | "
                       f"{r['ops']} | {fmt_rate(r['ops_per_s'])} | {fmt_rate(ref[0])} | "
                       f"{ratio(r['ops_per_s'], ref[0])} | {fmt_us(r['p50_us'])} | {fmt_us(r['p99_us'])} | "
                       f"{fmt_us(ref[1])} | {r.get('statements_per_op', 0):.3f} | "
                       f"{r.get('round_trips_per_op', 0):.3f} |")
                if ref[0]:
                    self.targets.append(("W5", f"{r['case']} c={r['concurrency']} ≥ 2× reference "
                                         f"({fmt_rate(2 * ref[0])})",
                                         f"{fmt_rate(r['ops_per_s'])} ({ratio(r['ops_per_s'], ref[0])})",
                                         r["ops_per_s"] >= 2 * ref[0] and r.get("denied", 0) == 0))
        self.w()

    # W6 ------------------------------------------------------------------------------------------------------
    def w6(self):
        self.w("## W6 — full preflight on Postgres")
        self.w()
        self.w("Ban, subscription, usage, membership, rate-limit consume, admission insert for org_j/user_j. "
               "500 warm-up, 4,000 measured capped at 8 s. `sequential` is the hand-written libpqxx baseline "
               "(six prepared statements one after another, one connection and one thread per worker); "
               "`preflight` is the library's default pipeline on its Postgres store set. Statements per preflight "
               "are counted at the client; `server xacts/op` is the pg_stat_database xact_commit delta of the case "
               "(warm-up included) divided by its preflights — the server-side cross-check. References: node `pg` "
               "sequential for `sequential`, node `pg` Promise.all (reads in parallel) for `preflight`.")
        self.w()
        rows = self.by("W6")
        self.section_not_run("W6")
        seq = {r["concurrency"]: r for r in rows if r.get("mode") == "sequential"}
        pre = {r["concurrency"]: r for r in rows if r.get("mode") == "preflight"}
        if rows:
            self.w("| mode | concurrency | threads | connections | preflights | preflights/s | reference | ratio | "
                   "p50 | ref p50 | p99 | ref p99 | ratio to in-run sequential p50 | statements/op | "
                   "round trips/op | server xacts/op |")
            self.w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
            for r in rows:
                c = r["concurrency"]
                key = "sequential" if r["mode"] == "sequential" else "parallel"
                ref = REF.get(f"W6/{key}/{c}", (None, None, None))
                base = seq.get(c)
                self.w(f"| {r['mode']} | {c} | {r.get('client_threads')} | {r.get('connections')} | {r['ops']} | "
                       f"{fmt_rate(r['ops_per_s'])} | {fmt_rate(ref[0])} | {ratio(r['ops_per_s'], ref[0])} | "
                       f"{fmt_us(r['p50_us'])} | {fmt_us(ref[1])} | {fmt_us(r['p99_us'])} | {fmt_us(ref[2])} | "
                       f"{ratio(r['p50_us'], base['p50_us']) if base else '–'} | "
                       f"{r.get('statements_per_op', 0):.3f} | {r.get('round_trips_per_op', 0):.3f} | "
                       f"{r.get('server_xacts_per_op', 0):.3f} |")
        if 1 in pre and 1 in seq:
            self.targets.append(("W6", "preflight p50 at c=1 ≤ 0.5× the sequential baseline",
                                 f"{fmt_us(pre[1]['p50_us'])} vs {fmt_us(seq[1]['p50_us'])} "
                                 f"({ratio(pre[1]['p50_us'], seq[1]['p50_us'])})",
                                 pre[1]["p50_us"] <= 0.5 * seq[1]["p50_us"]))
        else:
            self.targets.append(("W6", "preflight p50 at c=1 ≤ 0.5× the sequential baseline", "–", None))
        if 32 in pre:
            v = pre[32]["ops_per_s"]
            self.targets.append(("W6", "preflight c=32 ≥ 3× reads-in-parallel reference (5.4 k/s)",
                                 f"{fmt_rate(v)} ({ratio(v, 1.8e3)})", v >= 5.4e3))
        else:
            self.targets.append(("W6", "preflight c=32 ≥ 3× reads-in-parallel reference (5.4 k/s)", "–", None))
        self.w()

    # W7 ------------------------------------------------------------------------------------------------------
    def w7(self):
        self.w("## W7 — preflightd over HTTP")
        self.w()
        self.w("`wrk -t2 -c64 -d30s` POSTing a fixed allowed request to `/v1/preflight` on loopback (wrk shares the "
               "two cores).")
        self.w()
        rows = self.by("W7")
        self.section_not_run("W7")
        if rows:
            self.w("| case | requests/s | p50 | p99 | errors | RSS before | RSS after |")
            self.w("|---|---|---|---|---|---|---|")
            for r in rows:
                self.w(f"| {r['name']} | {fmt_rate(r.get('ops_per_s'))} | {fmt_us(r.get('p50_us'))} | "
                       f"{fmt_us(r.get('p99_us'))} | {r.get('errors', '–')} | {r.get('rss_before_kb', '–')} kB | "
                       f"{r.get('rss_after_kb', '–')} kB |")
            mem = [r for r in rows if "memory" in r.get("name", "")]
            if mem:
                v = mem[0].get("ops_per_s", 0)
                self.targets.append(("W7", "in-memory ≥ 30,000 req/s, no errors", fmt_rate(v),
                                     v >= 30000 and not mem[0].get("errors")))
        else:
            self.targets.append(("W7", "in-memory ≥ 30,000 req/s, no errors", "–", None))
        self.w()


def plots(rows, img_dir, data_dir):
    """Writes the PNG plots with gnuplot; returns (list of (file, caption), note)."""
    if shutil.which("gnuplot") is None:
        return [], "gnuplot is not installed (scripts/setup.sh --with-bench-tools): no plots."
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(data_dir, exist_ok=True)
    made = []

    def run(name, script):
        path = os.path.join(data_dir, name + ".gp")
        with open(path, "w") as f:
            f.write(script)
        r = subprocess.run(["gnuplot", path], capture_output=True, text=True)
        if r.returncode != 0:
            sys.stderr.write(f"gnuplot {name}: {r.stderr}\n")
            return False
        return True

    head = "set terminal pngcairo size 800,480 font 'sans,10' noenhanced\nset grid\nset key top left\n"

    # Latency vs concurrency: W5 and W6.
    w5 = [r for r in rows if r.get("workload") == "W5" and "not_run" not in r]
    if w5:
        dat = os.path.join(data_dir, "w5_latency.dat")
        with open(dat, "w") as f:
            for case in ("hot_1", "distinct_10k"):
                f.write(f"# {case}\n")
                for r in sorted((r for r in w5 if r["case"] == case), key=lambda r: r["concurrency"]):
                    f.write(f"{r['concurrency']} {r['p50_us'] / 1000:.4f} {r['p99_us'] / 1000:.4f}\n")
                f.write("\n\n")
        out = os.path.join(img_dir, "w5_latency_vs_concurrency.png")
        if run("w5", head + f"set output '{out}'\nset title 'W5 Postgres limiter consume: latency vs concurrency'\n"
               "set xlabel 'concurrency'\nset ylabel 'ms'\nset logscale x 2\n"
               f"plot '{dat}' index 0 u 1:2 w lp t 'hot_1 p50', '' index 0 u 1:3 w lp t 'hot_1 p99', "
               "'' index 1 u 1:2 w lp t 'distinct_10k p50', '' index 1 u 1:3 w lp t 'distinct_10k p99'\n"):
            made.append((out, "W5: p50/p99 latency vs concurrency"))
    w6 = [r for r in rows if r.get("workload") == "W6" and "not_run" not in r]
    if w6:
        dat = os.path.join(data_dir, "w6_latency.dat")
        modes = [m for m in ("sequential", "preflight") if any(r["mode"] == m for r in w6)]
        with open(dat, "w") as f:
            for m in modes:
                f.write(f"# {m}\n")
                for r in sorted((r for r in w6 if r["mode"] == m), key=lambda r: r["concurrency"]):
                    f.write(f"{r['concurrency']} {r['p50_us'] / 1000:.4f} {r['p99_us'] / 1000:.4f}\n")
                f.write("\n\n")
        series = []
        for k, m in enumerate(modes):
            series.append(f"'{dat}' index {k} u 1:2 w lp t '{m} p50'")
            series.append(f"'{dat}' index {k} u 1:3 w lp t '{m} p99'")
        out = os.path.join(img_dir, "w6_latency_vs_concurrency.png")
        if run("w6", head + f"set output '{out}'\nset title 'W6 full preflight on Postgres: latency vs concurrency'\n"
               "set xlabel 'concurrency'\nset ylabel 'ms'\nset logscale x 2\nplot " + ", ".join(series) + "\n"):
            made.append((out, "W6: p50/p99 per preflight vs concurrency"))

    # Sequential vs concurrent: W2 (pipeline vs sequential) and W6 (sequential baseline vs preflight), p50.
    w2b = [(r["mode"], r["p50_us"] / 1000) for r in rows if r.get("workload") == "W2" and "not_run" not in r]
    w6b = [(f"{r['mode']} c={r['concurrency']}", r["p50_us"] / 1000)
           for r in rows if r.get("workload") == "W6" and "not_run" not in r]
    if w2b or w6b:
        script = ("set terminal pngcairo size 1000,420 font 'sans,10' noenhanced\nset grid\n"
                  f"set output '{os.path.join(img_dir, 'sequential_vs_concurrent.png')}'\n"
                  "set multiplot layout 1,2 title 'Sequential vs concurrent: p50 per decision'\n"
                  "set style data histograms\nset style fill solid 0.6\nset yrange [0:*]\nset ylabel 'ms'\n"
                  "set key off\n")
        for tag, bars, title in (("w2", w2b, "W2 engine, timers 1+2+3+4 ms"),
                                 ("w6", w6b, "W6 full preflight on Postgres")):
            if not bars:
                continue
            dat = os.path.join(data_dir, f"seq_vs_concurrent_{tag}.dat")
            with open(dat, "w") as f:
                for label, v in bars:
                    f.write(f"\"{label}\" {v:.4f}\n")
            script += f"set title '{title}'\nplot '{dat}' u 2:xtic(1)\n"
        script += "unset multiplot\n"
        out = os.path.join(img_dir, "sequential_vs_concurrent.png")
        if run("seq", script):
            made.append((out, "W2 and W6: p50 of concurrent evaluation beside sequential evaluation"))

    # Hot key vs 10k keys: W3 (1 thread, steady clock) and W5 (ops/s).
    w3 = [r for r in rows if r.get("workload") == "W3" and "not_run" not in r and r.get("threads") == 1
          and r.get("clock", "steady") == "steady"]
    if w3 or w5:
        dat3 = os.path.join(data_dir, "hot_vs_10k_w3.dat")
        dat5 = os.path.join(data_dir, "hot_vs_10k_w5.dat")
        with open(dat3, "w") as f:
            for lim in ("token_bucket", "fixed_window"):
                h = [r["ops_per_s"] for r in w3 if r["limiter"] == lim and r["keys"] == "hot_1"]
                d = [r["ops_per_s"] for r in w3 if r["limiter"] == lim and r["keys"] == "distinct_10k"]
                if h and d:
                    f.write(f"\"{lim}\" {h[0] / 1e6:.3f} {d[0] / 1e6:.3f}\n")
        with open(dat5, "w") as f:
            for c in (1, 16, 64):
                h = [r["ops_per_s"] for r in w5 if r["case"] == "hot_1" and r["concurrency"] == c]
                d = [r["ops_per_s"] for r in w5 if r["case"] == "distinct_10k" and r["concurrency"] == c]
                if h and d:
                    f.write(f"\"c={c}\" {h[0] / 1e3:.3f} {d[0] / 1e3:.3f}\n")
        out = os.path.join(img_dir, "hot_vs_10k.png")
        script = ("set terminal pngcairo size 1000,420 font 'sans,10' noenhanced\nset grid\n"
                  f"set output '{out}'\nset multiplot layout 1,2 title 'Hot key vs 10k keys (ops/s)'\n"
                  "set style data histograms\nset style fill solid 0.6\nset yrange [0:*]\n")
        if os.path.getsize(dat3) > 0:
            script += (f"set title 'W3 in-process, 1 thread'\nset ylabel 'M ops/s'\n"
                       f"plot '{dat3}' u 2:xtic(1) t 'hot_1', '' u 3 t 'distinct_10k'\n")
        if os.path.getsize(dat5) > 0:
            script += (f"set title 'W5 Postgres limiter'\nset ylabel 'k ops/s'\n"
                       f"plot '{dat5}' u 2:xtic(1) t 'hot_1', '' u 3 t 'distinct_10k'\n")
        script += "unset multiplot\n"
        if (os.path.getsize(dat3) > 0 or os.path.getsize(dat5) > 0) and run("hot", script):
            made.append((out, "W3 and W5: hot key vs 10k distinct keys"))
    return made, None


def main():
    if len(sys.argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    results, out_md, img_dir = sys.argv[1:4]
    meta = {}
    if len(sys.argv) >= 6 and sys.argv[4] == "--meta":
        with open(sys.argv[5]) as f:
            meta = json.load(f)
    rows = load(results)
    rep = Report(rows, meta)
    rep.w1()
    rep.w2()
    rep.w3()
    rep.w4()
    rep.w5()
    rep.w6()
    rep.w7()
    made, note = plots(rows, img_dir, os.path.join(os.path.dirname(os.path.abspath(results)), "plot"))

    md = []
    md.append("# Benchmarks")
    md.append("")
    md.append("Generated by `scripts/bench.sh` from `build/bench/results.jsonl` (one JSON object per case). The "
              "workloads, parameters and reference figures are those of shared/BENCHMARKS.md; every figure stands "
              "beside its reference and the ratio (figure ÷ reference: above 1 is better for throughput, below 1 "
              "is better for latency). Do not edit the tables by hand; re-run the script.")
    md.append("")
    md.append("## How to reproduce")
    md.append("")
    md.append("```sh")
    md.append("scripts/bench.sh                 # setup (with gnuplot), Release build in build/bench, throwaway "
              "Postgres, every workload, this report")
    md.append("scripts/bench.sh --only W3,W5    # a subset")
    md.append("scripts/bench.sh --quick         # smaller counts: a smoke test, figures not comparable")
    md.append("```")
    md.append("")
    md.append("## This run")
    md.append("")
    for k in ("date", "machine", "cpus", "kernel", "compiler", "postgres", "mode", "load_before", "load_after",
              "duration_s", "note"):
        if k in meta:
            md.append(f"- {k.replace('_', ' ')}: {meta[k]}")
    md.append("")
    md.append("## Targets")
    md.append("")
    md.append("| workload | target (from the issues) | figure | verdict |")
    md.append("|---|---|---|---|")
    for wl, t, fig, ok in rep.targets:
        md.append(f"| {wl} | {t} | {fig} | {verdict(ok)} |")
    missed = [t for t in rep.targets if t[3] is False]
    notrun = [t for t in rep.targets if t[3] is None]
    md.append("")
    if missed:
        md.append("Missed in this run: " + "; ".join(f"{w} {t} ({fig})" for w, t, fig, _ in missed) + ".")
    else:
        md.append("No target measured in this run was missed.")
    if notrun:
        md.append("")
        md.append("Not run (no figure): " + "; ".join(f"{w} {t}" for w, t, _, _ in notrun) + ".")
    md.append("")
    if made or note:
        md.append("## Plots")
        md.append("")
        if note:
            md.append(note)
        for path, caption in made:
            rel = os.path.relpath(path, os.path.dirname(os.path.abspath(out_md)))
            md.append(f"![{caption}]({rel})")
            md.append("")
    md.extend(rep.out)
    extra = meta.get("extra_md_file")
    if extra and os.path.exists(extra):
        with open(extra) as f:
            md.append(f.read().rstrip())
            md.append("")
    with open(out_md, "w") as f:
        f.write("\n".join(md).rstrip() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
