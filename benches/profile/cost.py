#!/usr/bin/env python3
"""cost.py: what the heap profiler costs (`make profile-bench`).

Runs each workload of benches/preload/workloads.c under the malloc shim
with profiling off, on at the default rate (512 KiB) and on at a 10x
higher rate (51 KiB), alternating the three in every round so that drift
of a shared machine falls on all of them, and prints the median wall time
of each and the ratios to the unprofiled shim.

  cost.py SHIM WORKLOADS [ROUNDS]
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

WORKLOADS = ["churn", "prodcons", "realloc", "mixed", "nodes"]


def run(shim, prog, workload, env_extra):
    # Only the options of the mode (LA_BENCH_ROUNDS and the like are the
    # benchmark's, not the shim's).
    env = {k: v for k, v in os.environ.items() if not k.startswith("LA_")}
    env.update(LD_PRELOAD=shim, **env_extra)
    t = time.perf_counter()
    subprocess.run([prog, workload], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main():
    shim, prog = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    with tempfile.TemporaryDirectory() as tmp:
        modes = {
            "off": {},
            "512k": {"LA_PROFILE": os.path.join(tmp, "a.raw")},
            "51k": {"LA_PROFILE": os.path.join(tmp, "b.raw"), "LA_PROFILE_RATE": "52429"},
        }
        print(f"{'workload':10} {'off (s)':>9} {'512k (s)':>9} {'ratio':>7} {'51k (s)':>9} {'ratio':>7}")
        all_ratios = []
        for w in WORKLOADS:
            times = {m: [] for m in modes}
            for _ in range(rounds):
                for m, e in modes.items():
                    times[m].append(run(shim, prog, w, e))
            med = {m: statistics.median(t) for m, t in times.items()}
            r1, r2 = med["512k"] / med["off"], med["51k"] / med["off"]
            all_ratios.append(r1)
            print(f"{w:10} {med['off']:9.3f} {med['512k']:9.3f} {r1:7.3f} {med['51k']:9.3f} {r2:7.3f}")
        gm = statistics.geometric_mean(all_ratios)
        print(f"geometric mean of the ratios at the default rate: {gm:.3f}")


if __name__ == "__main__":
    main()
