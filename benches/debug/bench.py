"""bench.py: leak-check cost of la-run --debug against valgrind memcheck.

Each program runs natively, under `la-run --debug` and under
`valgrind --leak-check=full` in the same run (the median wall time of N
rounds, native and la-run interleaved so that load from other processes
hits both alike; valgrind once, it is slow), and the table gives the slowdown of
each checker against native and valgrind's time over la-run's. A second
table does the same for the malloc-bound workload suite of
benches/preload/workloads.c (churn, prodcons, realloc, mixed, nodes), with
the peak RSS of each run; valgrind gets one run (LA_BENCH_VG_ROUNDS runs,
their median, when set) of at most LA_BENCH_VG_TIMEOUT seconds per workload
(default 240; a slower run shows as "> N"). Writes build/debug_bench.md,
ending with the targets' verdicts (at most 3x native, at least 10x faster
than valgrind, over the geo-mean and per workload). Figures, not pass/fail.

A third table runs the thread-scaling benchmark's program
(benches/scale/scale.c: per-thread churn, a ring of cross-thread frees,
256 KiB-4 MiB blocks) at 1 thread and at the core count (LA_SCALE_THREADS
replaces the counts, as "1 4 16" on a larger machine), natively and under
`la-run --debug`: the same 3x target holds at every thread count, and the
debug mode's time at N threads over its time at 1 shows whether it scales
as the program does (fixed work per thread: flat up to the core count).

When run.sh could build the suite with AddressSanitizer
(build/debug/workloads_asan), that build runs in the same rounds, with the
quarantine and trace depth of `la-run --debug` (ASAN_OPTIONS below) and its
leak check on: a reference for the cost of a compiled-in checker. It
instruments the program's own memory accesses as well, so its figure is not
an allocator's alone; the workloads make few accesses besides their calls
to malloc and free.
"""
import math
import os
import shutil
import subprocess
import sys
import threading
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
LA_RUN = os.path.join(BUILD, "la-run")
PY = sys.executable

PROGRAMS = [
    ("clean C program", [os.path.join(BUILD, "debug", "clean")]),
    ("python3 -c print(1)", [PY, "-c", "print(1)"]),
    ("python3 json 20k objects", [PY, "-c",
        "import json; d=[{'k': i, 'v': str(i) * 5} for i in range(20000)]; "
        "print(len(json.loads(json.dumps(d))))"]),
    ("git --version", ["git", "--version"]),
    ("git log -n 100 --stat", ["git", "log", "-n", "100", "--stat"]),
    ("ls -lR /usr/include", ["ls", "-lR", "/usr/include"]),
]
WORKLOADS = ["churn", "prodcons", "realloc", "mixed", "nodes"]
SCALE_WORKLOADS = ["churn", "ring", "large"]
SCALE_THREADS = [int(t) for t in os.environ.get(
    "LA_SCALE_THREADS", f"1 {os.cpu_count() or 1}").split()]
VG_TIMEOUT = int(os.environ.get("LA_BENCH_VG_TIMEOUT", "240"))
VG_ROUNDS = max(1, int(os.environ.get("LA_BENCH_VG_ROUNDS", "1")))
# `la-run --debug`'s defaults: a 4 MiB quarantine, 8 frames per trace.
ASAN_OPTIONS = "detect_leaks=1:quarantine_size_mb=4:malloc_context_size=8"


GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run_rss(cmd, timeout=300):
    """Wall time and peak RSS (MB, None when unknown) of one run; (None, None)
    on timeout.

    The RSS comes from GNU time (/usr/bin/time: its child is a small process
    before it execs the program; a fork of this Python process would count
    Python's own size); without it the RSS stays unknown."""
    out = None
    run = cmd
    if GNU_TIME:
        out = os.path.join(BUILD, "debug", ".rss")
        run = [GNU_TIME, "-q", "-f", "%M", "-o", out] + cmd
    # A blocking wait with a watchdog: Popen.wait(timeout) polls with
    # sleeps of up to 50 ms, which would round short runs up.
    killed = []
    t = time.perf_counter()
    p = subprocess.Popen(run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watchdog = threading.Timer(timeout, lambda: (killed.append(1), p.kill()))
    watchdog.start()
    p.wait()
    dt = time.perf_counter() - t
    watchdog.cancel()
    if killed:
        return None, None
    rss = None
    if out:
        with open(out) as f:
            rss = int(f.read().split()[-1]) / 1024
    return dt, rss


def interleaved(cmds, rounds):
    """Runs each command once per round, in turn; per command, the median
    time and the RSS of the run closest to it (None on a timeout)."""
    runs = [[] for _ in cmds]
    for _ in range(rounds):
        for i, cmd in enumerate(cmds):
            runs[i].append(run_rss(cmd))
    result = []
    for r in runs:
        if any(t is None for t, _ in r):
            result.append((None, None))
            continue
        r.sort(key=lambda x: x[0])
        result.append(r[len(r) // 2])
    return result


def fmt(x):
    return "-" if x is None else f"{x:.3f}"


def fmt1(x):
    return "-" if x is None else f"{x:.0f}"


def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:.1f}x"


def valgrind_time(cmd, timeout=300):
    """Median wall time of VG_ROUNDS runs of cmd under valgrind's leak
    check; None when a run timed out."""
    times = []
    for _ in range(VG_ROUNDS):
        t, _ = run_rss(["valgrind", "-q", "--leak-check=full"] + cmd, timeout)
        if t is None:
            return None
        times.append(t)
    return sorted(times)[len(times) // 2]


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def targets(per, slow, fast):
    """The suite's targets (at most 3x native, at least 10x faster than
    valgrind), over the geo-mean and workload by workload."""
    def verdict(ok):
        return "met" if ok else "NOT met"
    out = ["Targets:"]
    g = geomean(slow)
    over = [f"{w} {s:.1f}x" for w, s, _ in per if s > 3.0]
    out.append(f"- at most 3x native: geo-mean {g:.1f}x ({verdict(g <= 3.0)}); "
               f"{len(per) - len(over)} of {len(per)} workloads"
               + (f" (over: {', '.join(over)})" if over else ""))
    if len(fast) == len(slow):
        g = geomean(fast)
        under = [f"{w} {v:.1f}x" for w, _, v in per if v < 10.0]
        out.append(f"- at least 10x faster than valgrind: geo-mean {g:.1f}x "
                   f"({verdict(g >= 10.0)}); {len(per) - len(under)} of {len(per)} workloads"
                   + (f" (under: {', '.join(under)})" if under else ""))
    else:
        out.append("- at least 10x faster than valgrind: not measured (valgrind missing "
                   "or timed out)")
    return out


def scaling():
    """The thread-scaling table (see the module doc): its lines."""
    scale = os.path.join(BUILD, "debug", "scale")
    if not os.access(scale, os.X_OK):
        return ["", "Thread scaling: not measured (build/debug/scale missing)."]
    counts = sorted(set(SCALE_THREADS))
    lines = ["", "# Thread scaling under the debug mode (benches/scale/scale.c)", "",
             "| workload | threads | native s | la-run --debug s | debug/native | "
             "debug / debug at 1 thread |",
             "|---|---|---|---|---|---|"]
    over = []
    for w in SCALE_WORKLOADS:
        first = None
        for n in counts:
            cmd = [scale, w, str(n)]
            (native, _), (debug, _) = interleaved([cmd, [LA_RUN, "--debug"] + cmd], ROUNDS)
            if first is None:
                first = debug
            lines.append(f"| {w} | {n} | {fmt(native)} | {fmt(debug)} | "
                         f"{ratio(debug, native)} | {ratio(debug, first)} |")
            print(lines[-1], flush=True)
            if native and debug and debug / native > 3.0:
                over.append(f"{w} at {n}: {debug / native:.1f}x")
    lines += ["", f"Target, at most 3x native at every thread count ({', '.join(map(str, counts))}): "
              + ("met" if not over else f"NOT met ({'; '.join(over)})")
              + f". Fixed work per thread; {os.cpu_count()} cores here. Native: the "
              "program's own malloc (glibc)."]
    return lines


def main():
    have_valgrind = shutil.which("valgrind") is not None
    lines = ["# Leak check: la-run --debug vs valgrind memcheck", "",
             "| program | native s | la-run --debug s | valgrind s | debug/native | "
             "valgrind/native | valgrind/debug |",
             "|---|---|---|---|---|---|---|"]
    for name, cmd in PROGRAMS:
        if shutil.which(cmd[0]) is None and not os.path.exists(cmd[0]):
            continue
        (native, _), (debug, _) = interleaved([cmd, [LA_RUN, "--debug"] + cmd], ROUNDS)
        vg = valgrind_time(cmd) if have_valgrind else None
        lines.append(f"| {name} | {fmt(native)} | {fmt(debug)} | {fmt(vg)} | "
                     f"{ratio(debug, native)} | {ratio(vg, native)} | {ratio(vg, debug)} |")
        print(lines[-1], flush=True)
    lines += ["", "# Malloc-bound workload suite (benches/preload/workloads.c)", "",
              "| workload | native s | la-run --debug s | valgrind s | ASan s | "
              "debug/native | ASan/native | valgrind/debug | native MB | debug MB |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    wl = os.path.join(BUILD, "debug", "workloads")
    wl_asan = os.path.join(BUILD, "debug", "workloads_asan")
    have_asan = os.access(wl_asan, os.X_OK)
    slow, fast, vs_asan = [], [], []
    per = []  # (workload, debug/native, valgrind/debug or None)
    for w in WORKLOADS:
        cmds = [[wl, w], [LA_RUN, "--debug", wl, w]]
        if have_asan:
            cmds.append(["env", f"ASAN_OPTIONS={ASAN_OPTIONS}", wl_asan, w])
        timed = interleaved(cmds, ROUNDS)
        (native, native_rss), (debug, debug_rss) = timed[:2]
        asan = timed[2][0] if have_asan else None
        vg, vg_cell = None, "-"
        if have_valgrind:
            vg = valgrind_time([wl, w], VG_TIMEOUT)
            vg_cell = fmt(vg) if vg is not None else f"> {VG_TIMEOUT}"
        vg_ratio = ratio(vg, debug) if vg is not None else (
            f"> {VG_TIMEOUT / debug:.0f}x" if have_valgrind and debug else "-")
        lines.append(f"| {w} | {fmt(native)} | {fmt(debug)} | {vg_cell} | {fmt(asan)} | "
                     f"{ratio(debug, native)} | {ratio(asan, native)} | {vg_ratio} | "
                     f"{fmt1(native_rss)} | {fmt1(debug_rss)} |")
        print(lines[-1], flush=True)
        if native and debug and asan:
            vs_asan.append(asan / native)
        if native and debug:
            slow.append(debug / native)
            if vg is not None:
                fast.append(vg / debug)
            per.append((w, debug / native, vg / debug if vg is not None else None))
    if slow:
        asan_g = f"{geomean(vs_asan):.1f}x" if vs_asan and len(vs_asan) == len(slow) else "-"
        lines.append(f"| geo-mean | | | | | {geomean(slow):.1f}x | {asan_g} | "
                     f"{f'{geomean(fast):.1f}x' if len(fast) == len(slow) else '-'} | | |")
        lines += ["", *targets(per, slow, fast)]
    lines += scaling()
    vg_runs = "one run" if VG_ROUNDS == 1 else f"median of {VG_ROUNDS} runs"
    lines += ["", f"Median of {ROUNDS} interleaved rounds (valgrind: {vg_runs}); peak RSS "
              f"of the median run. Command: `make debug-bench` (LA_BENCH_ROUNDS={ROUNDS}"
              f"{f' LA_BENCH_VG_ROUNDS={VG_ROUNDS}' if VG_ROUNDS > 1 else ''})."]
    if have_asan:
        lines += ["", "ASan: the same workloads built with `-fsanitize=address`, run with "
                  f"`ASAN_OPTIONS={ASAN_OPTIONS}` (the quarantine and trace depth of "
                  "`la-run --debug`, leak check on); it also checks the program's own "
                  "memory accesses, so it is a reference, not an allocator-only figure."]
    else:
        lines += ["", "ASan: not measured (the compiler could not build the workloads "
                  "with -fsanitize=address)."]
    out = os.path.join(BUILD, "debug_bench.md")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
