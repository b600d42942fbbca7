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

Then the instructions each workload runs, profiling off and at the
default rate, counted by callgrind (one run each; LA_BENCH_CALLGRIND=0
leaves them out): a figure that does not move with the load of a shared
machine, as wall time does.

Then the real programs of the preload tests (python3's json and sqlite3,
the sqlite3 CLI, gcc and g++ compiling, git making a repository) run the
same way under the shim alone: profiling off, at the default rate and at
the 10x rate, each process writing its own profile (`%p` in the path). A
program that is not installed is left out with a note.

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


def instructions(argv, env_extra, tmp):
    """Instructions the program and its children ran (callgrind, summed
    over the processes' output files, which a child's redirected stderr
    cannot hide), or None when valgrind is not installed or the run
    failed."""
    valgrind = shutil.which("valgrind")
    if not valgrind:
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("LA_")}
    out = tempfile.mkdtemp(dir=tmp)
    r = subprocess.run([valgrind, "--tool=callgrind", "--trace-children=yes",
                        "--callgrind-out-file=" + os.path.join(out, "cg.%p"), "env"]
                       + [f"{k}={v}" for k, v in env_extra.items()] + argv,
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    total, files = 0, 0
    for name in os.listdir(out):
        with open(os.path.join(out, name)) as f:
            for line in f:
                if line.startswith("summary:") or line.startswith("totals:"):
                    total += int(line.split()[1])
                    files += 1
                    break
    shutil.rmtree(out, ignore_errors=True)
    if r.returncode != 0 or files == 0:
        return None
    return total


def instruction_lines(shim, prog, tmp):
    """Markdown lines of the instruction counts, profiling off and at the
    default rate: unlike time, they do not move with the machine's load."""
    if os.environ.get("LA_BENCH_CALLGRIND", "1") == "0" or not shutil.which("valgrind"):
        return ["", "Instruction counts left out (valgrind not installed, or "
                "LA_BENCH_CALLGRIND=0)."]
    lines = ["", "### Instructions (callgrind, one run each)", "",
             "Deterministic where wall time is not: the same workloads, profiling off and at "
             "the default rate (the profile written at exit included).", "",
             "| workload | profiling off | 512 KiB (default) | ratio |", "|---|---|---|---|"]
    ratios = []
    for w in WORKLOADS:
        off = instructions([prog, w], {"LD_PRELOAD": shim}, tmp)
        on = instructions([prog, w], {"LD_PRELOAD": shim,
                                      "LA_PROFILE": os.path.join(tmp, "i.raw")}, tmp)
        if off is None or on is None:
            lines.append(f"| {w} | failed | failed | |")
            continue
        ratios.append(on / off)
        print(w, f"instructions off={off} on={on}", flush=True)
        lines.append(f"| {w} | {off / 1e6:,.1f} M | {on / 1e6:,.1f} M | {on / off:.3f}x |")
    if ratios:
        gm = statistics.geometric_mean(ratios)
        lines.append(f"| **geometric mean** | | | **{gm:.3f}x** |")
        lines += ["", f"Instructions at the default rate: geometric mean {100 * (gm - 1):+.2f}%; "
                  f"worst workload {100 * (max(ratios) - 1):+.2f}%."]
    return lines


SQL = """create table t(id integer primary key, v text, n real);
with recursive c(x) as (select 1 union all select x + 1 from c where x < 50000)
  insert into t select x, printf('value-%08d', x * 7919 % 100003), x / 7.0 from c;
create index t_v on t(v);
select count(*), sum(n), min(v), max(v) from t;
select v from t where id % 9973 = 0 order by v;
"""

GIT = """set -e
rm -rf "$1"; mkdir -p "$1"; cd "$1"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t
export GIT_COMMITTER_EMAIL=t@example.com GIT_CONFIG_NOSYSTEM=1 HOME="$1"
git init -q -b main .
# Automatic gc and maintenance in the foreground: detached, their processes
# outlive the measured command.
git config gc.autoDetach false; git config maintenance.autoDetach false
# One thread for pack-objects' delta search: with more, how the work is split
# (and so how much it compresses, and the instructions counted) depends on
# the threads' timing, which any change of speed moves.
git config pack.threads 1
i=0
while [ $i -lt 20 ]; do
  # Files dated in the past: one written in the second the index is
  # written is \"racily clean\", and how much git rehashes would depend on
  # the machine's speed.
  seq $i 1000 >"f$((i % 7)).txt"; touch -d @946684800 ./*.txt
  git add -A; git commit -q -m "commit $i"; i=$((i + 1))
done
git log --format='%H %s' >/dev/null; git gc -q; git fsck --no-progress >/dev/null 2>&1
"""


def programs(tmp):
    """[(name, argv)] of the real programs that are installed, and notes."""
    sql = os.path.join(tmp, "t.sql")
    with open(sql, "w") as f:
        f.write(SQL)
    git = os.path.join(tmp, "git.sh")
    with open(git, "w") as f:
        f.write(GIT)
    python = os.environ.get("PYTHON", "python3")
    cand = [
        ("python3 json + sqlite3 (20000 records)", python,
         [python, "c_tests/preload/workload.py", "20000"]),
        ("sqlite3 CLI (50000 rows, index)", "sqlite3",
         ["sh", "-c", f"sqlite3 :memory: <'{sql}'"]),
        ("gcc -O2 -S (a C test)", "gcc",
         ["gcc", "-O2", "-S", "-o", "/dev/null", "c_tests/preload_misuse.c", "-Ic_tests"]),
        ("g++ -O1 -S (the C++ test)", "g++",
         ["g++", "-std=c++17", "-O1", "-S", "-o", "/dev/null", "c_tests/preload_cxx.cpp"]),
        ("git: 20 commits, log, gc, fsck", "git",
         ["sh", git, os.path.join(tmp, "repo")]),
    ]
    have, notes = [], []
    for name, tool, argv in cand:
        if shutil.which(tool):
            have.append((name, argv))
        else:
            notes.append(f"{name} left out: {tool} not installed")
    return have, notes


def real_programs(shim, rounds, tmp):
    """Markdown lines of the real programs' table (profiling off, default
    rate, 10x rate, the shim alone) and the geometric-mean ratios."""
    progs, notes = programs(tmp)
    pdir = os.path.join(tmp, "p")
    os.makedirs(pdir, exist_ok=True)
    ms = [("off", "profiling off", {"LD_PRELOAD": shim}),
          ("512k", "512 KiB (default)",
           {"LD_PRELOAD": shim, "LA_PROFILE": os.path.join(pdir, "a.%p.raw")}),
          ("51k", "51 KiB (10x)",
           {"LD_PRELOAD": shim, "LA_PROFILE": os.path.join(pdir, "b.%p.raw"),
            "LA_PROFILE_RATE": "52429"})]
    med, fast = {}, {}
    for name, argv in progs:
        times = {k: [] for k, _, _ in ms}
        for _ in range(rounds):
            for k, _, env in ms:
                times[k].append(run(argv, env))
        med[name] = {k: statistics.median(t) for k, t in times.items()}
        fast[name] = {k: min(t) for k, t in times.items()}
        print(name, " ".join(f"{k}={v:.3f}" for k, v in med[name].items()), flush=True)
    icount = {}
    if os.environ.get("LA_BENCH_CALLGRIND", "1") != "0" and shutil.which("valgrind"):
        for name, argv in progs:
            off = instructions(argv, ms[0][2], tmp)
            on = instructions(argv, ms[1][2], tmp)
            if off and on:
                icount[name] = on / off
                print(name, f"instructions off={off} on={on}", flush=True)
    written = os.listdir(pdir)
    if progs and not any(n.startswith("a.") for n in written):
        sys.exit("cost.py: no profile was written at the default rate")
    lines = ["", "### Real programs (the preload tests' programs)", "",
             f"Median of {rounds} interleaved rounds; time in seconds (ratio to profiling "
             "off). Each process writes its own profile.", "",
             "| program | " + " | ".join(label for _, label, _ in ms)
             + " | instructions, default rate / off |",
             "|---|" + "---|" * (len(ms) + 1)]
    geo = {k: [] for k, _, _ in ms}
    for name, _ in progs:
        base = med[name]["off"]
        cells = []
        for k, _, _ in ms:
            r = med[name][k] / base
            geo[k].append(r)
            cells.append(f"{med[name][k]:.3f} ({r:.2f}x)")
        ic = f"{icount[name]:.3f}x" if name in icount else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ic} |")
    if progs:
        gm = {k: statistics.geometric_mean(v) for k, v in geo.items()}
        igm = statistics.geometric_mean(icount.values()) if icount else None
        lines.append("| **geometric mean** | "
                     + " | ".join(f"**{gm[k]:.2f}x**" for k, _, _ in ms)
                     + (f" | **{igm:.3f}x** |" if igm else " | |"))
        lines += ["", "Target: within 2% at the default rate (time: geometric mean "
                  f"{100 * (gm['512k'] - 1):+.1f}%, worst program "
                  f"{100 * (max(geo['512k']) - 1):+.1f}%"
                  + (f"; instructions: geometric mean {100 * (igm - 1):+.2f}%, worst "
                     f"{100 * (max(icount.values()) - 1):+.2f}%" if igm else "") + ")."]
        lines += [fastest_line(fast, [n for n, _ in progs], rounds, "program")]
    lines += [f"- {n}" for n in notes]
    return lines


def fastest_line(fast, names, rounds, what):
    """The default rate's cost by the fastest of each cell's rounds: noise
    on a shared machine only adds time, so this ratio is the steadier one
    (the target above judges the medians)."""
    r = [fast[n]["512k"] / fast[n]["off"] for n in names]
    return (f"By the fastest of the {rounds} rounds of each: geometric mean "
            f"{100 * (statistics.geometric_mean(r) - 1):+.1f}%, worst {what} "
            f"{100 * (max(r) - 1):+.1f}%.")


def main():
    # Absolute: a program that changes directory (git's script does) would
    # not find a relative LD_PRELOAD path, and its processes would run on
    # the C library's malloc unmeasured.
    shim, prog = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    out_md = sys.argv[4] if len(sys.argv) > 4 else os.path.join("build", "profile_bench.md")
    with tempfile.TemporaryDirectory() as tmp:
        m, notes = modes(shim, prog, tmp)
        med, fast = {}, {}
        for w in WORKLOADS:
            times = {k: [] for k in m}
            for _ in range(rounds):
                for k, (_, argv, env) in m.items():
                    times[k].append(run(argv + [w], env))
            med[w] = {k: statistics.median(t) for k, t in times.items()}
            fast[w] = {k: min(t) for k, t in times.items()}
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
    lines += [fastest_line(fast, WORKLOADS, rounds, "workload")]
    if "heaptrack" in gm:
        lines.append(f"heaptrack over the profiling shim at the default rate: "
                     f"{gm['heaptrack'] / gm['512k']:.1f}x the time (geometric mean).")
    lines += [f"- {n}" for n in notes]
    with tempfile.TemporaryDirectory() as tmp:
        lines += instruction_lines(shim, prog, tmp)
    with tempfile.TemporaryDirectory() as tmp:
        lines += real_programs(shim, rounds, tmp)
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(out_md) or ".", exist_ok=True)
    with open(out_md, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
