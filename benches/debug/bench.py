"""bench.py: leak-check cost of la-run --debug against valgrind memcheck.

Each program runs natively, under `la-run --debug` and under
`valgrind --leak-check=full` in the same run (best wall time of N
rounds; valgrind once, it is slow), and the table gives the slowdown of
each checker against native and valgrind's time over la-run's. A second
table runs malloc-bound microbenchmarks (the preload workload suite)
natively and under la-run --debug only, since valgrind would take minutes.
Writes build/debug_bench.md. Figures, not pass/fail.
"""
import os
import shutil
import subprocess
import sys
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
WORKLOADS = ["realloc", "churn", "nodes"]


def timed(cmd, rounds, timeout=300):
    best = None
    for _ in range(rounds):
        t = time.perf_counter()
        try:
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return None
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    return best


def fmt(x):
    return "-" if x is None else f"{x:.3f}"


def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:.1f}x"


def main():
    have_valgrind = shutil.which("valgrind") is not None
    lines = ["# Leak check: la-run --debug vs valgrind memcheck", "",
             "| program | native s | la-run --debug s | valgrind s | debug/native | "
             "valgrind/native | valgrind/debug |",
             "|---|---|---|---|---|---|---|"]
    for name, cmd in PROGRAMS:
        if shutil.which(cmd[0]) is None and not os.path.exists(cmd[0]):
            continue
        native = timed(cmd, ROUNDS)
        debug = timed([LA_RUN, "--debug"] + cmd, ROUNDS)
        vg = timed(["valgrind", "-q", "--leak-check=full"] + cmd, 1) if have_valgrind else None
        lines.append(f"| {name} | {fmt(native)} | {fmt(debug)} | {fmt(vg)} | "
                     f"{ratio(debug, native)} | {ratio(vg, native)} | {ratio(vg, debug)} |")
        print(lines[-1], flush=True)
    lines += ["", "# Malloc-bound microbenchmarks (preload workload suite)", "",
              "| workload | native s | la-run --debug s | debug/native |", "|---|---|---|---|"]
    wl = os.path.join(BUILD, "debug", "workloads")
    for w in WORKLOADS:
        native = timed([wl, w], ROUNDS)
        debug = timed([LA_RUN, "--debug", wl, w], 1)
        lines.append(f"| {w} | {fmt(native)} | {fmt(debug)} | {ratio(debug, native)} |")
        print(lines[-1], flush=True)
    out = os.path.join(BUILD, "debug_bench.md")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
