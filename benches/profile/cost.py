#!/usr/bin/env python3
"""cost.py: what the heap profiler costs (`make profile-bench`).

Runs each workload of benches/preload/workloads.c five ways, in turn in
every round so that drift of a shared machine falls on all of them:

- the malloc shim with profiling off (the baseline of every ratio);
- the shim profiling at the default rate (512 KiB) and at a 10x higher
  rate (51 KiB), writing its profile at exit;
- mimalloc under LD_PRELOAD, unprofiled: the fast peer;
- heaptrack (Debian's `heaptrack`, tracing every call over glibc's malloc):
  the profiler people use under LD_PRELOAD today.

It prints and writes (to OUT_MD, default build/profile_bench.md) the median
wall time of each and its ratio to the unprofiled shim. A peer that is not
installed is left out with a note.

  cost.py SHIM WORKLOADS [ROUNDS] [OUT_MD]
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

WORKLOADS = ["churn", "prodcons", "realloc", "mixed", "nodes"]
LIBDIR = os.environ.get("LIBDIR", "/usr/lib/x86_64-linux-gnu")
MIMALLOC = os.path.join(LIBDIR, "libmimalloc.so.2")


def run(argv, env_extra):
    # Only the options of the mode (LA_BENCH_ROUNDS and the like are the
    # benchmark's, not the shim's).
    env = {k: v for k, v in os.environ.items() if not k.startswith("LA_")}
    env.update(env_extra)
    t = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def modes(shim, prog, tmp):
    """name -> (label, argv prefix, environment), in run order."""
    m = {
        "off": ("shim, profiling off", [prog], {"LD_PRELOAD": shim}),
        "512k": ("shim, 512 KiB (default)", [prog],
                 {"LD_PRELOAD": shim, "LA_PROFILE": os.path.join(tmp, "a.raw")}),
        "51k": ("shim, 51 KiB (10x)", [prog],
                {"LD_PRELOAD": shim, "LA_PROFILE": os.path.join(tmp, "b.raw"),
                 "LA_PROFILE_RATE": "52429"}),
    }
    notes = []
    if os.path.exists(MIMALLOC):
        m["mimalloc"] = ("mimalloc, no profiler", [prog], {"LD_PRELOAD": MIMALLOC})
    else:
        notes.append(f"mimalloc left out: {MIMALLOC} not found")
    heaptrack = shutil.which("heaptrack")
    if heaptrack:
        m["heaptrack"] = ("heaptrack (glibc)",
                          [heaptrack, "-o", os.path.join(tmp, "h"), prog], {})
    else:
        notes.append("heaptrack left out: not installed")
    return m, notes


def main():
    shim, prog = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    out_md = sys.argv[4] if len(sys.argv) > 4 else os.path.join("build", "profile_bench.md")
    with tempfile.TemporaryDirectory() as tmp:
        m, notes = modes(shim, prog, tmp)
        med = {}
        for w in WORKLOADS:
            times = {k: [] for k in m}
            for _ in range(rounds):
                for k, (_, argv, env) in m.items():
                    times[k].append(run(argv + [w], env))
            med[w] = {k: statistics.median(t) for k, t in times.items()}
            print(w, " ".join(f"{k}={v:.3f}" for k, v in med[w].items()), flush=True)
    keys = list(m)
    lines = ["# Heap profiler: what sampling costs", "",
             f"Median of {rounds} interleaved rounds per cell; time in seconds (ratio to the "
             "unprofiled shim). Workloads: `benches/preload/workloads.c`. Command: "
             "`make profile-bench` (`LA_BENCH_ROUNDS` sets the rounds).", "",
             "| workload | " + " | ".join(m[k][0] for k in keys) + " |",
             "|---|" + "---|" * len(keys)]
    geo = {k: [] for k in keys}
    for w in WORKLOADS:
        base = med[w]["off"]
        cells = []
        for k in keys:
            r = med[w][k] / base
            geo[k].append(r)
            cells.append(f"{med[w][k]:.3f} ({r:.2f}x)")
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    gm = {k: statistics.geometric_mean(v) for k, v in geo.items()}
    lines.append("| **geometric mean** | " + " | ".join(f"**{gm[k]:.2f}x**" for k in keys) + " |")
    lines += ["", "Target: profiling at the default rate within 2% of the unprofiled shim "
              f"(geometric mean {100 * (gm['512k'] - 1):+.1f}%; worst workload "
              f"{100 * (max(geo['512k']) - 1):+.1f}%)."]
    if "heaptrack" in gm:
        lines.append(f"heaptrack over the profiling shim at the default rate: "
                     f"{gm['heaptrack'] / gm['512k']:.1f}x the time (geometric mean).")
    lines += [f"- {n}" for n in notes]
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(out_md) or ".", exist_ok=True)
    with open(out_md, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
