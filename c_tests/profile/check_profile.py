#!/usr/bin/env python3
"""check_profile.py: checks raw heap profiles of the test programs
(c_tests/profile/run_tests.sh).

Parses the raw format, version 3 (see src/preload/profile.rs and
tools/la-prof/src/raw.rs), symbolizes each sample's first frame that lies
in the test program (with the program's `nm -S` symbol table and
`readelf -lW` segments: no other tool), and compares the bytes attributed
to each site with the truth.

Estimator: a sample of an allocation of s requested bytes at rate R stands
for w = s / (1 - exp(-s/R)) bytes (each allocation is sampled with
probability p = 1 - exp(-s/R)). For a site of n allocations of s bytes the
estimate's standard deviation is s * sqrt(n * (1 - p) / p); a site passes
when its estimate lies within 4 standard deviations of the truth (a false
failure about once in 16000 runs per site).

  check_profile.py sites DUMP PROGRAM NOFP_LIB
  check_profile.py threads PARENT_DUMP CHILD_DUMP PROGRAM
  check_profile.py dumps FILE N        FILE holds at least N well-formed dumps
  check_profile.py times FILE SIZE MS  the samples of at least SIZE bytes
                                       lived MS milliseconds, by their times
"""
import math
import struct
import subprocess
import sys

MIB = 1 << 20


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


# A version 3 sample's free time while its block is live.
LIVE = 2**64 - 1
MAX_FRAMES = 64


def parse(path):
    """The dumps in a file, in the raw format version 3 (a text header,
    then binary items): a list of dicts (header fields, maps, traces,
    samples). A sample is (size, requested, alloc_ms, free_ms or -1, pcs).
    Text is named by line, binary items by their byte offset."""
    with open(path, "rb") as f:
        data = f.read()
    dumps, pos, n = [], 0, 1  # n: the line at pos
    while pos < len(data):
        cur = None
        # The text header, up to its `data` line.
        while True:
            nl = data.find(b"\n", pos)
            line = data[pos:len(data) if nl < 0 else nl].decode("utf-8", "replace")
            if nl < 0:
                if cur is None and not line.startswith("la-profile"):
                    fail(f"{path}:{n}: record outside a dump: {line!r}")
                fail(f"{path}: last dump has no end")
            w = line.split(" ")
            if w[0] == "la-profile":
                if cur is not None or w != ["la-profile", "3"]:
                    fail(f"{path}:{n}: unexpected header {line!r}")
                cur = {"maps": [], "samples": [], "traces": {}}
            elif cur is None:
                fail(f"{path}:{n}: record outside a dump: {line!r}")
            elif w[0] in ("pid", "rate", "time", "dropped", "lost") and len(w) == 2:
                cur[w[0]] = int(w[1])
            elif w[0] == "map":
                lo, hi = (int(x, 16) for x in w[1].split("-"))
                cur["maps"].append((lo, hi, w[2], int(w[3], 16), " ".join(w[4:])))
            elif w != ["data"]:
                fail(f"{path}:{n}: unknown record {line!r}")
            pos, n = nl + 1, n + 1
            if w == ["data"]:
                break
        for k in ("pid", "rate", "time", "dropped", "lost"):
            if k not in cur:
                fail(f"{path}: dump without {k}")
        # The binary items, up to `end\n`.
        items = pos
        while True:
            at, tag = pos, data[pos:pos + 1]
            if tag == b"t" and pos + 9 <= len(data):
                tid, nf = struct.unpack_from("<II", data, pos + 1)
                if nf > MAX_FRAMES:
                    fail(f"{path}: byte {at}: trace {tid} of {nf} frames, more than {MAX_FRAMES}")
                pos += 9 + 8 * nf
                if pos > len(data):
                    fail(f"{path}: last dump has no end")
                if tid in cur["traces"]:
                    fail(f"{path}: byte {at}: trace {tid} written twice in one dump")
                cur["traces"][tid] = list(struct.unpack_from("<%dQ" % nf, data, at + 9))
            elif tag == b"s" and pos + 37 <= len(data):
                size, req, a_ms, f_ms, tid = struct.unpack_from("<QQQQI", data, pos + 1)
                pos += 37
                if f_ms == LIVE:
                    f_ms = -1
                if tid not in cur["traces"]:
                    fail(f"{path}: byte {at}: sample of trace {tid}, not written before it")
                if size < req or (f_ms != -1 and f_ms < a_ms):
                    fail(f"{path}: byte {at}: inconsistent sample {(size, req, a_ms, f_ms, tid)}")
                cur["samples"].append((size, req, a_ms, f_ms, cur["traces"][tid]))
            elif data[pos:pos + 4] == b"end\n":
                pos += 4
                break
            elif tag in (b"t", b"s") or b"end\n".startswith(data[pos:]):
                fail(f"{path}: last dump has no end")
            else:
                fail(f"{path}: byte {at}: unknown record {data[pos:pos + 16]!r}")
        n += data.count(b"\n", items, pos)
        dumps.append(cur)
    if not dumps:
        fail(f"{path}: no dump")
    return dumps


class Symbols:
    """Function symbols of one ELF file, looked up by runtime address."""

    def __init__(self, path):
        self.path = path
        self.loads = []
        for line in subprocess.run(["readelf", "-lW", path], capture_output=True,
                                   text=True, check=True).stdout.splitlines():
            f = line.split()
            if f and f[0] == "LOAD":
                self.loads.append((int(f[1], 16), int(f[2], 16), int(f[5], 16)))
        self.syms = []
        for line in subprocess.run(["nm", "-S", "--defined-only", path], capture_output=True,
                                   text=True, check=True).stdout.splitlines():
            f = line.split()
            if len(f) == 4 and f[2] in "tTwW":
                self.syms.append((int(f[0], 16), int(f[1], 16), f[3]))

    def name(self, maps, pc):
        """The function holding return address pc, or None when pc is not
        in this file."""
        for lo, hi, _perms, off, path in maps:
            if path == self.path and lo <= pc < hi:
                file_off = pc - 1 - lo + off
                for p_off, p_vaddr, p_filesz in self.loads:
                    if p_off <= file_off < p_off + p_filesz:
                        vaddr = file_off - p_off + p_vaddr
                        for a, size, name in self.syms:
                            if a <= vaddr < a + size:
                                return name
                        return "?"
        return None


def weight(req, rate):
    s = max(req, 1)
    return s / (1.0 - math.exp(-s / rate))


def sd(n, s, rate):
    p = 1.0 - math.exp(-s / rate)
    return s * math.sqrt(n * (1.0 - p) / p)


def attribute(dump, prog):
    """Estimated allocated and live bytes per program function."""
    alloc, live, count = {}, {}, {}
    for size, req, _a, f_ms, pcs in dump["samples"]:
        site = None
        for pc in pcs:
            site = prog.name(dump["maps"], pc)
            if site is not None:
                break
        w = weight(req, dump["rate"])
        alloc[site] = alloc.get(site, 0.0) + w
        count[site] = count.get(site, 0) + 1
        if f_ms == -1:
            live[site] = live.get(site, 0.0) + w
    return alloc, live, count


def expect(label, got, truth, sigma):
    ok = abs(got - truth) <= 4 * sigma + 1
    print(f"{'ok  ' if ok else 'FAIL'} {label}: {got / MIB:8.2f} MiB, truth {truth / MIB:6.2f} MiB,"
          f" 4 sd = {4 * sigma / MIB:.2f} MiB")
    return ok


def check_sites(dump_path, prog_path, lib_path):
    dump = parse(dump_path)[-1]
    rate = dump["rate"]
    prog, lib = Symbols(prog_path), Symbols(lib_path)
    alloc, live, count = attribute(dump, prog)
    ok = True
    # Every sample drawn was recorded (the tables have room to spare here).
    print(f"{'ok  ' if dump['lost'] == 0 else 'FAIL'} {dump['lost']} samples lost")
    ok &= dump["lost"] == 0
    # name: (blocks, block size, freed)
    sites = {"site_churn": (65536, 1024, True), "site_live": (164, 100 << 10, False),
             "site_leak": (2048, 4096, False), "site_via_lib": (4096, 2048, True),
             "site_realloc_move": (2048, 32 << 10, True), "site_big": (64, 1 << 20, False)}
    for name, (n, s, freed) in sites.items():
        sigma = sd(n, s, rate)
        ok &= expect(f"{name} allocated", alloc.get(name, 0.0), n * s, sigma)
        ok &= expect(f"{name} live", live.get(name, 0.0), 0 if freed else n * s, sigma)
    # A realloc that keeps its block is no new allocation: no sample.
    stay = count.get("site_realloc_stay", 0)
    print(f"{'ok  ' if stay == 0 else 'FAIL'} {stay} samples of realloc in place "
          "(2^20 calls; counting each would sample about 16,000)")
    ok &= stay == 0
    # Every sample made in the library unwinds to site_via_lib: the frame
    # after the library's frames is in the program, in that function.
    through = 0
    for _s, _r, _a, _f, pcs in dump["samples"]:
        if pcs and lib.name(dump["maps"], pcs[0]) is not None:
            k = 0
            while k < len(pcs) and lib.name(dump["maps"], pcs[k]) is not None:
                k += 1
            caller = prog.name(dump["maps"], pcs[k]) if k < len(pcs) else None
            if caller != "site_via_lib":
                print(f"FAIL a sample in {lib_path} unwinds to {caller}, not site_via_lib")
                ok = False
            through += 1
    if through < count.get("site_via_lib", 0):
        print(f"FAIL {count.get('site_via_lib', 0)} samples of site_via_lib, only {through} "
              "start in the library")
        ok = False
    print(f"{'ok  ' if through else 'FAIL'} {through} samples unwound from the library "
          "(built without frame pointers) to site_via_lib")
    ok &= through > 0
    own = [pcs for _s, _r, _a, _f, pcs in dump["samples"]
           if pcs and any(lo <= pcs[0] < hi and p.endswith("liballoc_preload.so")
                          for lo, hi, _x, _o, p in dump["maps"])]
    if own:
        print(f"FAIL {len(own)} samples start inside the shim")
        ok = False
    sys.exit(0 if ok else 1)


def check_threads(parent_path, child_path, prog_path):
    prog = Symbols(prog_path)
    parent = parse(parent_path)[-1]
    child = parse(child_path)[-1]
    ok = True
    if parent["pid"] == child["pid"]:
        print("FAIL parent and child dumps have the same pid")
        ok = False
    # Threads that start together take their first samples together, while
    # one of them maps the tables: none of those samples may be lost.
    for name, d in (("parent", parent), ("child", child)):
        print(f"{'ok  ' if d['lost'] == 0 else 'FAIL'} {d['lost']} samples lost, {name}")
        ok &= d["lost"] == 0
    alloc, live, _ = attribute(parent, prog)
    rate = parent["rate"]
    n, s = 4 * 8 * 512, 4096
    ok &= expect("thread_site (exited threads) live, parent", live.get("thread_site", 0.0),
                 n * s, sd(n, s, rate))
    if alloc.get("child_site", 0.0) != 0.0:
        print("FAIL the parent's profile has the child's site")
        ok = False
    calloc_, _clive, _ = attribute(child, prog)
    ok &= expect("child_site allocated, child", calloc_.get("child_site", 0.0), 512 * 8192,
                 sd(512, 8192, child["rate"]))
    ok &= expect("thread_site live, child (inherited)", _clive.get("thread_site", 0.0),
                 n * s, sd(n, s, rate))
    # After the fork both ran twin_site (512 blocks of 6001 + 8 i bytes):
    # a child that drew its parent's gaps would sample the same blocks.
    twins = []
    for d in (parent, child):
        twins.append(sorted(r for _, r, _, _, _ in d["samples"]
                            if 6001 <= r < 6001 + 8 * 512 and (r - 6001) % 8 == 0))
    same = twins[0] == twins[1]
    print(f"{'FAIL' if same else 'ok  '} twin_site: the parent sampled {len(twins[0])} blocks,"
          f" the child {len(twins[1])}, {'the same' if same else 'not the same'}")
    ok &= not same
    sys.exit(0 if ok else 1)


def check_dumps(path, n):
    dumps = parse(path)
    print(f"{len(dumps)} dumps in {path}")
    times = [d["time"] for d in dumps]
    if times != sorted(times):
        fail(f"dump times go back: {times}")
    sys.exit(0 if len(dumps) >= n else 1)


def check_kept(path, kept):
    """profile_every.c at a rate of 1 byte: no sample lost, hundreds
    taken, and live at exit exactly the `kept` blocks of 3001, 4001, ...
    bytes it kept, beside at most a few of the C library's own (stdio's
    buffers): had a sampled block's free gone unseen, it would be live
    here."""
    dump = parse(path)[-1]
    kept = int(kept)
    if dump["lost"] != 0:
        fail(f"{path}: {dump['lost']} samples lost")
    samples = dump["samples"]
    if len(samples) < 150:
        fail(f"{path}: only {len(samples)} samples at a rate of 1 byte")
    live = [s for s in samples if s[3] == -1]
    mine = sorted(s[1] for s in live if s[1] in {3001 + 1000 * k for k in range(kept)})
    print(f"{len(samples)} samples, {len(live)} live, kept: {mine}")
    if mine != [3001 + 1000 * k for k in range(kept)]:
        fail(f"{path}: the kept blocks live in the dump: {mine}")
    if len(live) > kept + 4:
        fail(f"{path}: {len(live)} live samples, {kept} kept: frees went unseen")
    for size, req, _a, _f, _pcs in samples:
        if size < req:
            fail(f"{path}: a sample of {req} bytes with {size} usable")
    sys.exit(0)


def check_times(path, size, ms):
    """Every sample of at least `size` bytes in the last dump was freed
    after living about `ms` milliseconds (the program slept that long in
    between: at least 0.9 ms, at most ms + 1000 on a loaded machine), and
    the dump's time comes after its free."""
    dump = parse(path)[-1]
    big = [s for s in dump["samples"] if s[0] >= size]
    if not big:
        fail(f"{path}: no sample of {size} bytes or more")
    for _size, _req, a_ms, f_ms, _pcs in big:
        life = f_ms - a_ms
        print(f"sample at {a_ms} ms freed at {f_ms} ms: {life} ms (slept {ms}); "
              f"dump at {dump['time']} ms")
        if f_ms == -1 or not 0.9 * ms <= life <= ms + 1000:
            fail(f"{path}: a lifetime of {life} ms for a block kept {ms} ms")
        if dump["time"] < f_ms:
            fail(f"{path}: dump time {dump['time']} before a free at {f_ms}")
    sys.exit(0)


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "sites" and len(sys.argv) == 5:
        check_sites(*sys.argv[2:])
    elif mode == "threads" and len(sys.argv) == 5:
        check_threads(*sys.argv[2:])
    elif mode == "dumps" and len(sys.argv) == 4:
        check_dumps(sys.argv[2], int(sys.argv[3]))
    elif mode == "kept" and len(sys.argv) == 4:
        check_kept(sys.argv[2], sys.argv[3])
    elif mode == "times" and len(sys.argv) == 5:
        check_times(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        print(__doc__)
        sys.exit(2)
