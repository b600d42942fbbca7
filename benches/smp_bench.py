#!/usr/bin/env python3
"""Runs benches/smp_bench.c for la_smp_allocator and its peers, interleaved.

Usage: smp_bench.py <ours-binary> <malloc-binary> [runs]

Every (workload, allocator) pair runs `runs` times (default 3) in its own
process; the runs are interleaved (round-robin over allocators, then over
repetitions) so that machine noise spreads evenly. The table shows the median
time and median peak RSS (VmHWM) and their ratios to mimalloc measured in
the same run (for realloc also the ratio to glibc). Figures, not a test.
"""
import os
import statistics
import subprocess
import sys

LIB = "/usr/lib/x86_64-linux-gnu/"
PEERS = [
    ("glibc", None),
    ("mimalloc", LIB + "libmimalloc.so.2"),
    ("jemalloc", LIB + "libjemalloc.so.2"),
    ("tcmalloc", LIB + "libtcmalloc_minimal.so.4"),
]
WORKLOADS = ["pairs", "churn", "prodcons", "mixed", "realloc"]


def run(cmd, preload):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    _, secs, rss = out.split()
    return float(secs), int(rss)


def main():
    ours, plain = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    allocs = [("la_smp", [ours], None)] + [
        (name, [plain], path) for name, path in PEERS if path is None or os.path.exists(path)
    ]
    res = {}
    for _ in range(runs):
        for w in WORKLOADS:
            for name, cmd, pre in allocs:
                res.setdefault((w, name), []).append(run(cmd + [w], pre))
    print("| workload | allocator | time (s) | x mimalloc | peak RSS (MiB) | x mimalloc |")
    print("|---|---|---|---|---|---|")
    for w in WORKLOADS:
        med = {n: (statistics.median(t for t, _ in res[(w, n)]),
                   statistics.median(r for _, r in res[(w, n)])) for n, _, _ in allocs}
        mt, mr = med.get("mimalloc", (None, None))
        for n, _, _ in allocs:
            t, r = med[n]
            xt = f"{t / mt:.2f}" if mt else "-"
            xr = f"{r / mr:.2f}" if mr else "-"
            extra = ""
            if w == "realloc" and n == "la_smp" and "glibc" in med:
                extra = f" ({t / med['glibc'][0]:.2f} x glibc)"
            print(f"| {w} | {n} | {t:.3f}{extra} | {xt} | {r / 1024:.1f} | {xr} |")
    print(f"\nmedian of {runs} interleaved runs per cell")


if __name__ == "__main__":
    main()
