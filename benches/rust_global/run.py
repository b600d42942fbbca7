"""run.py: the Rust global-allocator benchmark (`make rust-bench`).

Runs the three binaries of benches/rust_global (liballoc's LibAlloc, the
mimalloc crate, the system allocator as #[global_allocator]) in turns,
ROUNDS times each (interleaved, so that a slow moment of the machine hits
all three), and reports the median seconds of each phase and the ratio of
each allocator's time to the mimalloc crate's (below 1.0x: faster than
mimalloc). The report is printed and written to OUT_MD.

Usage: run.py BIN_DIR OUT_MD [ROUNDS] [THREADS]   (THREADS 0: the CPU count,
at least 2)
"""
import os
import statistics
import subprocess
import sys

ALLOCATORS = ["liballoc", "mimalloc", "system"]


def run_once(bin_dir, name, threads):
    out = subprocess.run(
        [os.path.join(bin_dir, name), str(threads)],
        check=True, capture_output=True, text=True,
    ).stdout
    res = {}
    for line in out.splitlines():
        phase, secs, checksum = line.split()
        res[phase] = (float(secs), checksum)
    return res


def main():
    bin_dir, out_md = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    threads = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else 0
    if threads <= 0:
        threads = max(2, os.cpu_count() or 2)
    times = {a: {} for a in ALLOCATORS}
    checks = {}
    for _ in range(rounds):
        for a in ALLOCATORS:
            for phase, (secs, checksum) in run_once(bin_dir, a, threads).items():
                times[a].setdefault(phase, []).append(secs)
                # Every allocator must compute the same thing.
                if checks.setdefault(phase, checksum) != checksum:
                    sys.exit(f"run.py: {a} gave checksum {checksum} for {phase}, "
                             f"expected {checks[phase]}")
    phases = list(times["mimalloc"])
    med = {a: {p: statistics.median(times[a][p]) for p in phases} for a in ALLOCATORS}
    total = {a: sum(med[a].values()) for a in ALLOCATORS}
    lines = [
        "# Rust global allocator",
        "",
        f"`make rust-bench`: benches/rust_global, {threads} threads, median of "
        f"{rounds} runs per allocator (interleaved). Seconds per phase; the "
        "ratio is to the `mimalloc` crate's time (lower is better, target "
        "<= 1.00x for liballoc).",
        "",
        "| phase | liballoc | mimalloc | system | liballoc / mimalloc | system / mimalloc |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for p in phases + ["total"]:
        row = {a: (total[a] if p == "total" else med[a][p]) for a in ALLOCATORS}
        lines.append(
            f"| {p} | {row['liballoc']:.3f} | {row['mimalloc']:.3f} | "
            f"{row['system']:.3f} | {row['liballoc'] / row['mimalloc']:.2f}x | "
            f"{row['system'] / row['mimalloc']:.2f}x |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    os.makedirs(os.path.dirname(out_md) or ".", exist_ok=True)
    with open(out_md, "w") as f:
        f.write(report)


if __name__ == "__main__":
    main()
