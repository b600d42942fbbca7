"""Thread-scaling benchmark: liballoc_preload.so against glibc, jemalloc,
tcmalloc and mimalloc under LD_PRELOAD (`make scale-bench`, through run.sh).

Every workload of scale.c runs at every thread count on every allocator,
interleaved (round-robin, so that machine noise spreads evenly), ROUNDS
times; the median wall time and the median peak RSS (ru_maxrss of the
child, from wait4 in benches/preload/measure.c) are reported. The memory
system calls (mmap, munmap, madvise, mremap, brk) are counted in one more
run per cell under `strace -f -c`, which is not timed. A run whose output
differs from glibc's is marked wrong; one that fails or exceeds the time
limit is marked failed. Figures, never pass/fail.

Output: build/scale_bench.md (per workload: time, peak RSS and system-call
tables, rows = thread counts), build/scale_bench.png (time against threads,
one subplot per workload), and a verdict line per workload against the
project's targets: time <= 1.1x the best peer at each thread count, peak
RSS <= 1.0x mimalloc's as a geometric mean over the thread counts.

Environment: LA_SCALE_THREADS="1 4 16" replaces the thread counts (default
1, 2, 4, ... up to the number of cores, the number of cores, and twice
that); LA_BENCH_TIMEOUT the limit per run in seconds (default 60).

Usage: bench.py BUILD_DIR SCALE_BINARY MEASURE_BINARY [ROUNDS]
"""
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

BUILD = sys.argv[1]
SCALE = sys.argv[2]
MEASURE = sys.argv[3]
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
TIMEOUT = float(os.environ.get("LA_BENCH_TIMEOUT", "60"))
LIBDIR = "/usr/lib/x86_64-linux-gnu"
ROOT = os.getcwd()
OUTDIR = os.path.join(BUILD, "scale")

ALLOCATORS = [
    ("glibc", ""),
    ("jemalloc", f"{LIBDIR}/libjemalloc.so.2"),
    ("tcmalloc", f"{LIBDIR}/libtcmalloc_minimal.so.4"),
    ("mimalloc", f"{LIBDIR}/libmimalloc.so.2"),
    ("liballoc", os.path.join(ROOT, BUILD, "liballoc_preload.so")),
]
MISSING = [n for n, p in ALLOCATORS if p and not os.path.exists(p)]
ALLOCATORS = [(n, p) for n, p in ALLOCATORS if not p or os.path.exists(p)]
PEERS = [n for n, _ in ALLOCATORS if n != "liballoc"]
WORKLOADS = [
    ("churn", "per-thread window of 1024 live blocks, random replace; 16 B..2 KiB, 1 in 32 up to 32 KiB"),
    ("ring", "thread i allocates, thread (i+1)%n frees (batches of 64 through a ring per thread)"),
    ("large", "per-thread churn of 8 live blocks of 256 KiB..4 MiB, first, middle and last page written"),
    ("waves", "200 waves of short-lived threads; each allocates and frees 2,000 blocks of 16..2,000 B"),
]
SYSCALLS = ("mmap", "munmap", "madvise", "mremap", "brk")
TIME_TARGET = 1.1
RSS_TARGET = 1.0


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def thread_counts():
    env = os.environ.get("LA_SCALE_THREADS", "").replace(",", " ").split()
    if env:
        return sorted({int(x) for x in env if int(x) > 0})
    n = cores()
    counts, t = {n, 2 * n}, 1
    while t <= n:
        counts.add(t)
        t *= 2
    return sorted(counts)


def run(workload, threads, preload):
    """One timed run through the measure launcher: (seconds, peak RSS bytes,
    stdout) or None on failure or timeout."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env["MEASURE_PRELOAD"] = preload
    out_path = os.path.join(OUTDIR, "bench.out")
    res_path = os.path.join(OUTDIR, "bench.res")
    with open(out_path, "wb") as out:
        rc = subprocess.call([MEASURE, res_path, str(int(TIMEOUT)), SCALE, workload, str(threads)],
                             stdout=out, stderr=subprocess.DEVNULL, env=env)
    if rc != 0:
        return None
    with open(res_path) as f:
        secs, rss, status = f.read().split()
    if status != "0":
        return None
    with open(out_path, "rb") as f:
        return float(secs), int(rss), f.read()


def strace_usable():
    """The strace options that work here (seccomp filtering when the kernel
    and strace allow it, so that the untraced calls do not stop the child),
    or None with the reason printed."""
    if not shutil.which("strace"):
        print("strace not found: no system-call table")
        return None
    out = os.path.join(OUTDIR, "strace.probe")
    base = ["strace", "-f", "-c", "-e", "trace=" + ",".join(SYSCALLS), "-o", out]
    for extra in (["--seccomp-bpf"], []):
        try:
            rc = subprocess.call(base + extra + ["--", "true"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            rc = 1
        if rc == 0 and parse_strace(out) is not None:
            return base[:-2] + extra
    print("strace does not work here (ptrace refused?): no system-call table")
    return None


def parse_strace(path):
    """{syscall: calls} from an `strace -c` summary, or None."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    counts = {}
    for line in text.splitlines():
        tok = line.split()
        if len(tok) >= 5 and tok[-1] in SYSCALLS and re.fullmatch(r"\d+", tok[3]):
            counts[tok[-1]] = int(tok[3])
    return counts if "% time" in text else None


def count_syscalls(opts, workload, threads, preload):
    out = os.path.join(OUTDIR, "strace.out")
    cmd = list(opts) + ["-o", out]
    if preload:
        cmd += ["-E", f"LD_PRELOAD={preload}"]
    cmd += ["--", SCALE, workload, str(threads)]
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    try:
        rc = subprocess.call(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                             timeout=TIMEOUT * 4)
    except subprocess.TimeoutExpired:
        return None
    return parse_strace(out) if rc == 0 else None


def main():
    os.makedirs(OUTDIR, exist_ok=True)
    threads = thread_counts()
    names = [a for a, _ in ALLOCATORS]
    print(f"scale-bench: threads {threads}, {ROUNDS} round(s), allocators {names}"
          + (f" (missing: {', '.join(MISSING)})" if MISSING else ""), flush=True)
    results, reference, bad = {}, {}, set()
    start = time.time()
    for r in range(ROUNDS):
        for w, _ in WORKLOADS:
            for t in threads:
                for a, path in ALLOCATORS:
                    if (w, t, a) in bad:
                        continue
                    res = run(w, t, path)
                    if res is None:
                        bad.add((w, t, a))
                        print(f"  {w:6} {t:3} threads {a:9} failed or timed out", flush=True)
                        continue
                    secs, rss, out = res
                    if a == "glibc":
                        reference[(w, t)] = out
                    elif (w, t) in reference and out != reference[(w, t)]:
                        bad.add((w, t, a))
                        print(f"  {w:6} {t:3} threads {a:9} WRONG OUTPUT", flush=True)
                        continue
                    results.setdefault((w, t, a), []).append((secs, rss))
                    print(f"  round {r + 1}: {w:6} {t:3} threads {a:9} {secs:7.3f} s "
                          f"{rss / 2**20:8.1f} MiB", flush=True)
    print(f"  timed runs: {time.time() - start:.0f} s", flush=True)
    syscalls = {}
    opts = strace_usable()
    if opts:
        start = time.time()
        for w, _ in WORKLOADS:
            for t in threads:
                for a, path in ALLOCATORS:
                    c = count_syscalls(opts, w, t, path)
                    if c is not None:
                        syscalls[(w, t, a)] = c
                print(f"  strace: {w:6} {t:3} threads: " + ", ".join(
                    f"{a} {sum(syscalls[(w, t, a)].values())}" for a in names if (w, t, a) in syscalls),
                    flush=True)
        print(f"  strace runs: {time.time() - start:.0f} s", flush=True)
    write_report(threads, names, results, bad, syscalls if opts else None)


def med(results, w, t, a, i):
    v = results.get((w, t, a))
    return statistics.median(x[i] for x in v) if v else None


def fastest(results, w, t, a):
    """The fastest run's wall time: with noise that only ever adds time
    (other tenants of a shared machine), the steadiest figure of the
    allocator's own cost, shown beside the median."""
    v = results.get((w, t, a))
    return min(x[0] for x in v) if v else None


def fastest_ratio(results, w, t):
    """liballoc's fastest run over the fastest run of any peer, or None."""
    mine = fastest(results, w, t, "liballoc")
    peers = [f for f in (fastest(results, w, t, a) for a in PEERS) if f is not None]
    return mine / min(peers) if mine and peers else None


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def best_peer(results, w, t, i):
    """(value, name) of the best (lowest) peer, or (None, None)."""
    vals = [(med(results, w, t, a, i), a) for a in PEERS]
    vals = [v for v in vals if v[0] is not None]
    return min(vals) if vals else (None, None)


def verdict(results, threads, w):
    parts, ok_time = [], True
    for t in threads:
        mine = med(results, w, t, "liballoc", 0)
        best, who = best_peer(results, w, t, 0)
        if mine is None or best is None:
            parts.append(f"{t}t n/a")
            ok_time = False
            continue
        ratio = mine / best
        ok_time = ok_time and ratio <= TIME_TARGET
        fr = fastest_ratio(results, w, t)
        parts.append(f"{t}t {ratio:.2f}x ({who}) " + ("ok" if ratio <= TIME_TARGET else "over") +
                     ("" if fr is None else f" (fastest runs {fr:.2f}x)"))
    rss = [med(results, w, t, "liballoc", 1) / med(results, w, t, "mimalloc", 1) for t in threads
           if med(results, w, t, "liballoc", 1) and med(results, w, t, "mimalloc", 1)]
    gm = geomean(rss) if len(rss) == len(threads) else None
    time_part = f"time vs best peer: {', '.join(parts)} -> " + \
        ("within" if ok_time else "NOT within") + f" {TIME_TARGET}x"
    rss_part = ("peak RSS vs mimalloc: n/a" if gm is None else
                f"peak RSS vs mimalloc (geo mean): {gm:.2f}x -> " +
                ("within" if gm <= RSS_TARGET else "NOT within") + f" {RSS_TARGET}x")
    return f"{w}: {time_part}; {rss_part}"


def write_report(threads, names, results, bad, syscalls):
    lines = ["# Thread scaling: liballoc_preload.so vs other mallocs", "",
             f"Fixed work per thread, so perfect scaling keeps the time flat up to {cores()} "
             f"threads (the cores here). Median of {ROUNDS} interleaved round(s) per cell; the last "
             "column also gives liballoc's fastest run over the fastest run of any peer "
             "(noise on a shared machine only adds time, so it is the steadier ratio), but the "
             "verdicts judge the medians. "
             f"Threads: {' '.join(map(str, threads))}. Best peer: the fastest of "
             f"{', '.join(PEERS)}. Command: `make scale-bench` "
             "(`LA_BENCH_ROUNDS`, `LA_SCALE_THREADS` override rounds and thread counts).", ""]
    if MISSING:
        lines += [f"Not installed, left out: {', '.join(MISSING)}.", ""]
    head = "| threads | " + " | ".join(names)
    sep = "|---" * (len(names) + 2) + "|"
    for w, desc in WORKLOADS:
        lines += [f"## {w}", "", desc + ".", "", "Wall time (s):", "",
                  head + " | liballoc / best peer (fastest runs) |", sep]
        for t in threads:
            cells = [("n/a" if v is None else f"{v:.3f}") for v in
                     (med(results, w, t, a, 0) for a in names)]
            mine, (best, who) = med(results, w, t, "liballoc", 0), best_peer(results, w, t, 0)
            fr = fastest_ratio(results, w, t)
            ratio = (f"{mine / best:.2f}x ({who})" if mine and best else "n/a") + \
                ("" if fr is None else f" ({fr:.2f}x)")
            lines.append(f"| {t} | " + " | ".join(cells) + f" | {ratio} |")
        lines += ["", "Peak RSS (MiB):", "", head + " | liballoc / mimalloc |", sep]
        for t in threads:
            cells = [("n/a" if v is None else f"{v / 2**20:.1f}") for v in
                     (med(results, w, t, a, 1) for a in names)]
            mine, mi = med(results, w, t, "liballoc", 1), med(results, w, t, "mimalloc", 1)
            lines.append(f"| {t} | " + " | ".join(cells) + " | " +
                         (f"{mine / mi:.2f}x" if mine and mi else "n/a") + " |")
        if syscalls is not None:
            lines += ["", "Memory system calls (" + " + ".join(SYSCALLS) +
                      "; one untimed run under `strace -f -c`, the loader's own calls included):", "",
                      head + " |", "|---" * (len(names) + 1) + "|"]
            for t in threads:
                cells = []
                for a in names:
                    c = syscalls.get((w, t, a))
                    cells.append("n/a" if c is None else str(sum(c.values())))
                lines.append(f"| {t} | " + " | ".join(cells) + " |")
        lines.append("")
    if syscalls is None:
        lines += ["System calls: not counted (strace missing or unusable here).", ""]
    if bad:
        lines += [f"Failed, wrong or timed out (limit {TIMEOUT:.0f} s): " +
                  ", ".join(f"{w} at {t} threads on {a}" for w, t, a in sorted(bad)), ""]
    verdicts = [verdict(results, threads, w) for w, _ in WORKLOADS] if "liballoc" in names else []
    lines += ["## Verdicts (targets: time <= 1.1x the best peer at every thread count; "
              "peak RSS <= 1.0x mimalloc, geometric mean over the thread counts)", ""]
    lines += [f"- {v}" for v in verdicts] or ["- liballoc_preload.so not built: no verdict"]
    lines += ["", "![time against threads](scale_bench.png)", ""]
    md = os.path.join(BUILD, "scale_bench.md")
    with open(md, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {md}")
    chart(threads, names, results)
    print("verdicts:")
    for v in verdicts:
        print("  " + v)


def chart(threads, names, results):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib unavailable: no chart")
        return
    cols = 2
    rows = (len(WORKLOADS) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(11, 4 * rows), squeeze=False)
    for k, (w, _) in enumerate(WORKLOADS):
        ax = axes[k // cols][k % cols]
        for a in names:
            pts = [(t, med(results, w, t, a, 0)) for t in threads]
            pts = [p for p in pts if p[1] is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=a,
                        linewidth=2.2 if a == "liballoc" else 1.2)
        ax.set_xscale("log", base=2)
        ax.set_xticks(threads)
        ax.set_xticklabels([str(t) for t in threads])
        ax.set_ylim(bottom=0)
        ax.set_title(w)
        ax.set_xlabel("threads")
        ax.set_ylabel("wall time (s)")
        ax.grid(alpha=0.3)
    for k in range(len(WORKLOADS), rows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"fixed work per thread, {cores()} cores (lower is better)")
    fig.tight_layout()
    out = os.path.join(BUILD, "scale_bench.png")
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
