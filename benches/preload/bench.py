"""Benchmark liballoc_preload.so against glibc, jemalloc, tcmalloc and
mimalloc under LD_PRELOAD (run by `make bench` through run.sh).

Every workload runs on every allocator, interleaved (round-robin, so that
machine noise spreads evenly), ROUNDS times; the median wall time and the
median peak RSS (ru_maxrss of the child, from wait4 in measure.c) are reported. Output:
build/preload_bench.md (table, geometric means, ratios to glibc and
mimalloc, the targets) and build/preload_bench.png (time and RSS ratios to
glibc). A run whose output differs from glibc's is marked wrong; a run that
exceeds the time limit is marked as a timeout. Figures, never pass/fail.

One more column, "liballoc unchecked", is the same shim built with
`free` trusting its argument (build/bench/liballoc_preload_unchecked.so):
it is not a peer, only the yardstick for what the pointer checks of
`free` cost, reported in a section of its own.

Usage: bench.py BUILD_DIR WORKLOADS_BINARY MEASURE_BINARY [ROUNDS]
"""
import math
import os
import statistics
import subprocess
import sys
import time

BUILD = sys.argv[1]
WORKLOADS = sys.argv[2]
MEASURE = sys.argv[3]
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
TIMEOUT = float(os.environ.get("LA_BENCH_TIMEOUT", "60"))
LIBDIR = "/usr/lib/x86_64-linux-gnu"
ROOT = os.getcwd()

UNCHECKED = "liballoc unchecked"
ALLOCATORS = [
    ("glibc", ""),
    ("jemalloc", f"{LIBDIR}/libjemalloc.so.2"),
    ("tcmalloc", f"{LIBDIR}/libtcmalloc_minimal.so.4"),
    ("mimalloc", f"{LIBDIR}/libmimalloc.so.2"),
    ("liballoc", os.path.join(ROOT, BUILD, "liballoc_preload.so")),
    (UNCHECKED, os.path.join(ROOT, BUILD, "bench", "liballoc_preload_unchecked.so")),
]
ALLOCATORS = [(n, p) for n, p in ALLOCATORS if not p or os.path.exists(p)]
PY = sys.executable
WORK = [
    ("churn (1 thread)", [WORKLOADS, "churn"]),
    ("producer/consumer", [WORKLOADS, "prodcons"]),
    ("realloc growth", [WORKLOADS, "realloc"]),
    ("mixed sizes (2 threads)", [WORKLOADS, "mixed"]),
    ("tiny linked nodes", [WORKLOADS, "nodes"]),
    ("python json+sqlite3", [PY, os.path.join(ROOT, "c_tests/preload/workload.py"), "15000"]),
]


def run(cmd, preload):
    """Runs cmd through the measure launcher; returns (seconds, peak RSS
    bytes, stdout) or None on timeout or failure."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env["MEASURE_PRELOAD"] = preload
    out_path = os.path.join(BUILD, "preload", "bench.out")
    res_path = os.path.join(BUILD, "preload", "bench.res")
    with open(out_path, "wb") as out:
        rc = subprocess.call([MEASURE, res_path, str(int(TIMEOUT))] + cmd, stdout=out,
                             stderr=subprocess.DEVNULL, env=env)
    if rc != 0:
        return None
    with open(res_path) as f:
        secs, rss, status = f.read().split()
    with open(out_path, "rb") as f:
        text = f.read()
    if status != "0":
        return None
    return float(secs), int(rss), text


def main():
    results = {}  # (work, alloc) -> list of (t, rss)
    reference = {}
    bad = set()
    start = time.time()
    for r in range(ROUNDS):
        for wname, cmd in WORK:
            for aname, path in ALLOCATORS:
                if (wname, aname) in bad:
                    continue
                res = run(cmd, path)
                if res is None:
                    bad.add((wname, aname))
                    print(f"  {wname:26} {aname:9} failed or timed out", flush=True)
                    continue
                t, rss, out = res
                if aname == "glibc":
                    reference[wname] = out
                elif wname in reference and out != reference[wname]:
                    bad.add((wname, aname))
                    print(f"  {wname:26} {aname:9} WRONG OUTPUT", flush=True)
                    continue
                results.setdefault((wname, aname), []).append((t, rss))
                print(f"  round {r + 1}: {wname:26} {aname:9} {t:7.3f} s {rss / 2**20:8.1f} MiB", flush=True)
    print(f"  ({time.time() - start:.0f} s)")
    write_report(results, bad)


def med(results, w, a, i):
    v = results.get((w, a))
    return statistics.median(x[i] for x in v) if v else None


def fastest(results, w, a):
    """The fastest run's wall time (noise on a shared machine only adds
    time: the steadiest figure of the allocator's own cost)."""
    v = results.get((w, a))
    return min(x[0] for x in v) if v else None


def geomean(xs):
    xs = [x for x in xs if x]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def write_report(results, bad):
    names = [a for a, _ in ALLOCATORS]
    works = [w for w, _ in WORK]
    lines = ["# liballoc_preload.so vs other mallocs", "",
             f"Median of {ROUNDS} interleaved runs per cell; time in seconds (ratio to glibc), "
             "peak RSS in MiB (ratio to glibc). Command: `make bench`.", ""]
    head = "| workload | " + " | ".join(names) + " |"
    lines += ["## Wall time", "", head, "|---" * (len(names) + 1) + "|"]
    gm_t, gm_r = {}, {}
    for w in works:
        base = med(results, w, "glibc", 0)
        cells = []
        for a in names:
            t = med(results, w, a, 0)
            cells.append("n/a" if t is None else f"{t:.3f} ({t / base:.2f}x)" if base else f"{t:.3f}")
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    done = {a: [w for w in works if med(results, w, a, 0) and med(results, w, "glibc", 0)] for a in names}
    complete = [w for w in works if all(med(results, w, a, 0) for a in names)]
    for a in names:
        gm_t[a] = geomean([med(results, w, a, 0) / med(results, w, "glibc", 0) for w in done[a]])
        gm_r[a] = geomean([med(results, w, a, 1) / med(results, w, "glibc", 1) for w in done[a]])

    def gm_cell(gm, a):
        if not gm[a]:
            return "n/a"
        part = "" if len(done[a]) == len(works) else f" (over {len(done[a])} of {len(works)})"
        return f"**{gm[a]:.2f}x**{part}"

    lines.append("| **geometric mean (ratio to glibc)** | " + " | ".join(gm_cell(gm_t, a) for a in names) + " |")
    lines += ["", "## Peak RSS", "", head, "|---" * (len(names) + 1) + "|"]
    for w in works:
        base = med(results, w, "glibc", 1)
        cells = []
        for a in names:
            r = med(results, w, a, 1)
            cells.append("n/a" if r is None else f"{r / 2**20:.1f} ({r / base:.2f}x)" if base else f"{r / 2**20:.1f}")
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    lines.append("| **geometric mean (ratio to glibc)** | " + " | ".join(gm_cell(gm_r, a) for a in names) + " |")
    lines += ["", "## Targets (liballoc)", ""]
    if "liballoc" in names and "mimalloc" in names and complete == works:
        lines.append(f"- geometric-mean time vs mimalloc: {gm_t['liballoc'] / gm_t['mimalloc']:.2f}x (target <= 1.0)")
        lines.append(f"- geometric-mean time vs glibc: {gm_t['liballoc']:.2f}x (target <= 0.7)")
        lines.append(f"- geometric-mean peak RSS vs mimalloc: {gm_r['liballoc'] / gm_r['mimalloc']:.2f}x (target <= 1.1)")
        peers = [a for a in names if a not in ("liballoc", UNCHECKED)]
        worst = max(((med(results, w, "liballoc", 0) / min(med(results, w, a, 0) for a in peers), w)
                     for w in complete))
        fworst = max(((fastest(results, w, "liballoc") / min(fastest(results, w, a) for a in peers), w)
                      for w in complete))
        lines.append(f"- slowest workload vs the best peer: {worst[0]:.2f}x on {worst[1]} (target <= 1.3); "
                     f"by the fastest of the {ROUNDS} runs of each: {fworst[0]:.2f}x on {fworst[1]}")
    else:
        lines.append("- not every allocator completed every workload: targets not evaluated")
    if "liballoc" in names and UNCHECKED in names:
        lines += ["", "## Cost of free's pointer checks", "",
                  "Wall time of liballoc over the same shim with an unchecked `free` (same run):", "",
                  "| workload | checked / unchecked |", "|---|---|"]
        costs = []
        for w in works:
            c, u = med(results, w, "liballoc", 0), med(results, w, UNCHECKED, 0)
            if c and u:
                costs.append(c / u)
                lines.append(f"| {w} | {c / u:.3f}x |")
        if costs:
            lines.append(f"| **geometric mean** | **{geomean(costs):.3f}x** |")
    if bad:
        lines += ["", "Failed, wrong or timed out (limit %.0f s): " % TIMEOUT +
                  ", ".join(f"{w} on {a}" for w, a in sorted(bad))]
    lines += ["", "![time and RSS ratios to glibc](preload_bench.png)", ""]
    md = os.path.join(BUILD, "preload_bench.md")
    with open(md, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {md}")
    chart(results, names, works, complete, gm_t, gm_r)


def chart(results, names, works, complete, gm_t, gm_r):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib unavailable: no chart")
        return
    labels = works + ["geomean"]
    fig, axes = plt.subplots(2, 1, figsize=(12, 8), sharex=True)
    width = 0.8 / len(names)
    for ax, idx, gm, title in ((axes[0], 0, gm_t, "wall time / glibc"), (axes[1], 1, gm_r, "peak RSS / glibc")):
        for k, a in enumerate(names):
            vals = []
            for w in works:
                v, b = med(results, w, a, idx), med(results, w, "glibc", idx)
                vals.append(v / b if v and b else 0)
            vals.append(gm[a] or 0)
            ax.bar([i + k * width for i in range(len(labels))], vals, width, label=a)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_ylabel(title)
        ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(ncol=len(names), fontsize=8)
    axes[1].set_xticks([i + 0.4 - width / 2 for i in range(len(labels))])
    axes[1].set_xticklabels(labels, rotation=15, fontsize=8)
    fig.suptitle("malloc implementations under LD_PRELOAD (lower is better)")
    fig.tight_layout()
    out = os.path.join(BUILD, "preload_bench.png")
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
