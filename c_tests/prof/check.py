#!/usr/bin/env python3
"""End-to-end checks of la-prof on a raw profile made by gen_dump.py from
the sites program (known call sites in the executable and in a shared
library built without frame pointers): in version 3, the format the
runtime writes, and in version 2, which la-prof still reads.

    check.py LA_PROF SITES_BIN WORKDIR

Each check prints "ok: ..." or "FAIL: ..."; the last line counts them.
"""
import json
import os
import re
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib

LA_PROF, SITES, WORK = sys.argv[1:4]
WORK = os.path.abspath(WORK)
HERE = os.path.dirname(os.path.abspath(__file__))
passed = failed = 0

# Rounding of each stack's values to whole numbers, and of the text
# table's units to two decimals.
REL = 2e-3


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("ok: " + what)
    else:
        failed += 1
        print("FAIL: " + what)


def close(a, b):
    return abs(a - b) <= REL * max(abs(a), abs(b)) + 1


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, **kw)


def path(name):
    return os.path.join(WORK, name)


UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def top_rows(text):
    """{function: (flat bytes, cum bytes)} from la-prof's --top table."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d.]+)(B|KiB|MiB|GiB)\s+[\d.]+%\s+[\d.]+%\s+([\d.]+)(B|KiB|MiB|GiB)\s+[\d.]+%\s+(.*)$", line)
        if m:
            rows[m.group(5)] = (float(m.group(1)) * UNITS[m.group(2)], float(m.group(3)) * UNITS[m.group(4)])
    return rows


def pprof_rows(text):
    """{function: flat value} from `go tool pprof -top -unit=B` (or counts)."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d.]+)B?\s+[\d.]+%\s+[\d.]+%\s+([\d.]+)B?\s+[\d.]+%\s+(\S+)", line)
        if m:
            rows[m.group(3)] = float(m.group(1))
    return rows


def check_top(raw, sites, label):
    """la-prof --top and --top --alloc on `raw` give the expected totals."""
    for flag, key in (([], "inuse_bytes"), (["--alloc"], "alloc_bytes")):
        r = run(LA_PROF, raw, *flag)
        check(r.returncode == 0 and r.stderr == "", "la-prof %s exits 0, quietly%s" % (" ".join(flag), label))
        rows = top_rows(r.stdout)
        for name, e in sites.items():
            if e[key] == 0:
                check(name not in rows or rows[name][0] == 0, "--top %s: %s has no bytes%s" % (key, name, label))
            else:
                got = rows.get(name, (-1, -1))[0]
                check(close(got, e[key]), "--top %s: %s %.0f, expected %.0f%s" % (key, name, got, e[key], label))
        total = sum(e[key] for e in sites.values())
        main_cum = rows.get("main", (0, -1))[1]
        check(close(main_cum, total - sites["0x10"][key]),
              "--top %s: main's cum is every symbolized site's bytes%s" % (key, label))


def main():
    os.makedirs(WORK, exist_ok=True)
    out = run(SITES)
    if out.returncode != 0:
        print("FAIL: the sites program ran: " + out.stderr)
        return 1
    with open(path("sites.out"), "w") as f:
        f.write(out.stdout)
    exp = {}
    for flag, name in (([], "p.raw"), (["--v2"], "p2.raw")):
        gen = run(sys.executable, os.path.join(HERE, "gen_dump.py"), *flag, path("sites.out"), path(name))
        if gen.returncode != 0:
            print("FAIL: gen_dump.py %s: %s" % (" ".join(flag), gen.stderr))
            return 1
        exp[name] = json.loads(gen.stdout)
    sites = exp["p.raw"]["sites"]
    raw = path("p.raw")

    # --top (the default output), by live bytes and by allocated bytes; the
    # same totals from the same samples in version 2.
    check_top(raw, sites, "")
    check_top(path("p2.raw"), exp["p2.raw"]["sites"], " (version 2)")
    r = run(LA_PROF, raw, "--top", "2")
    check(len(top_rows(r.stdout)) == 2, "--top 2 shows two rows")

    # All the files at once.
    outs = {k: path(k) for k in ("p.pb.gz", "live.svg", "alloc.svg", "chart.png")}
    r = run(LA_PROF, raw, "--pprof", outs["p.pb.gz"], "--flame-live", outs["live.svg"],
            "--flame-alloc", outs["alloc.svg"], "--chart", outs["chart.png"])
    check(r.returncode == 0 and r.stdout == "", "writing every output exits 0, no table: " + r.stderr.strip())

    # pprof read back by go tool pprof, not by la-prof.
    for index, key in (("inuse_space", "inuse_bytes"), ("alloc_space", "alloc_bytes"),
                       ("inuse_objects", "inuse_objects"), ("alloc_objects", "alloc_objects")):
        g = run("go", "tool", "pprof", "-top", "-unit=B", "-sample_index=" + index, outs["p.pb.gz"])
        check(g.returncode == 0, "go tool pprof reads the profile (%s) %s" % (index, g.stderr.strip()[-200:]))
        rows = pprof_rows(g.stdout)
        for name, e in sites.items():
            got = rows.get(name, 0.0)
            check(close(got, e[key]), "pprof %s: %s %.0f, expected %.0f" % (index, name, got, e[key]))
    g = run("go", "tool", "pprof", "-top", "-lines", outs["p.pb.gz"])
    check(re.search(r"keep_live \S*/sites\.c:\d+", g.stdout) is not None
          and re.search(r"leak_in_lib \S*/libsites\.c:\d+", g.stdout) is not None,
          "pprof -lines: sites carry file:line, in the executable and in the library")
    g = run("go", "tool", "pprof", "-raw", outs["p.pb.gz"])
    check("sample_index" not in g.stderr and g.returncode == 0 and "libsites.so" in g.stdout,
          "pprof -raw lists the library's mapping")

    # A library whose debug information was split off into a file named by
    # its .gnu_debuglink: file:line still comes through.
    lib = [l.split()[-1] for l in open(path("sites.out")) if l.endswith("/libsites.so\n")][0]
    split = path("split")
    os.makedirs(split, exist_ok=True)
    stripped = os.path.join(split, "libsites.so")
    ok = all(run(*cmd).returncode == 0 for cmd in (
        ("objcopy", "--only-keep-debug", lib, stripped + ".debug"),
        ("objcopy", "--strip-debug", "--add-gnu-debuglink=" + stripped + ".debug", lib, stripped)))
    moved = path("split.raw")
    with open(raw, "rb") as f, open(moved, "wb") as o:
        o.write(f.read().replace((" " + lib + "\n").encode(), (" " + stripped + "\n").encode()))
    r = run(LA_PROF, moved, "--pprof", path("split.pb.gz"))
    g = run("go", "tool", "pprof", "-top", "-lines", path("split.pb.gz"))
    check(ok and r.returncode == 0 and run("readelf", "-S", stripped).stdout.find(".debug_info") < 0
          and re.search(r"leak_in_lib \S*/libsites\.c:\d+", g.stdout) is not None,
          "a stripped library's lines come from its .gnu_debuglink file")

    # Flame graphs: valid XML holding the site names.
    for svg, names in ((outs["live.svg"], ["keep_live", "leak_in_lib", "main"]),
                       (outs["alloc.svg"], ["keep_live", "leak_in_lib", "churn_freed", "main"])):
        try:
            text = " ".join(t for t in ET.parse(svg).getroot().itertext())
            ok = all(n in text for n in names)
        except (ET.ParseError, OSError) as e:
            text, ok = str(e), False
        check(ok, "%s is XML naming %s" % (os.path.basename(svg), ", ".join(names)))
    live_text = " ".join(ET.parse(outs["live.svg"]).getroot().itertext())
    check("churn_freed" not in live_text, "live.svg leaves out the freed site")

    # The chart: a PNG that decodes.
    check(png_ok(outs["chart.png"]), "chart.png is a PNG whose image data inflates to its size")
    one = path("one.raw")
    with open(raw, "rb") as f, open(one, "wb") as o:
        data = f.read()
        ends = [at for tag, at, _len in items(data) if tag == b"e"]
        o.write(data[ends[-2] + 4:])
    r = run(LA_PROF, one, "--chart", path("one.png"))
    check(r.returncode == 0 and png_ok(path("one.png")), "a single dump gives a chart too")
    r = run(LA_PROF, one, "--chart", path("nofont.png"), env=dict(os.environ, LA_PROF_FONT="none"))
    check(r.returncode == 0 and png_ok(path("nofont.png")) and "keep_live" in r.stderr,
          "without a font the chart is drawn and its legend printed")

    bad_inputs()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def png_ok(p):
    try:
        data = open(p, "rb").read()
    except OSError:
        return False
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return False
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", body[:10])
            channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color, 1)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    if w is None:
        return False
    try:
        pixels = zlib.decompress(idat)
    except zlib.error:
        return False
    return len(pixels) == h * (1 + w * channels * depth // 8) and w > 100 and h > 100


def items(raw):
    """(tag, offset, length) of each binary item of a version 3 file, dump
    after dump."""
    out, pos = [], 0
    while pos < len(raw):
        pos = raw.index(b"\ndata\n", pos) + 6
        tag = None
        while tag != b"e":
            tag = raw[pos:pos + 1]
            if tag == b"t":
                length = 9 + 8 * struct.unpack_from("<I", raw, pos + 5)[0]
            else:
                length = {b"s": 37, b"e": 4}[tag]
            out.append((tag, pos, length))
            pos += length
    return out


def bad_inputs():
    raw = open(path("p.raw"), "rb").read()
    every = items(raw)
    first = {}  # the first item of each kind: its offset
    for tag, at, _length in every:
        first.setdefault(tag, at)
    t, s, e = first[b"t"], first[b"s"], first[b"e"]
    last_s = every[-2][1]  # the last dump's last sample, before its end
    tid = struct.unpack_from("<I", raw, t + 1)[0]
    no_rate = raw.replace(b"rate 65536\n", b"", 1)
    data_line = no_rate[:no_rate.index(b"\ndata\n")].count(b"\n") + 2
    v2 = open(path("p2.raw"), "rb").read()
    cases = {
        "missing": (None, r"cannot read .*missing\.raw"),
        "empty": (b"", r"empty\.raw: no dump"),
        "header": (b"la-profile 9\n" + raw[13:], r"header\.raw:1: unsupported format version"),
        "junk": (b"hello\n", r"junk\.raw:1: expected 'la-profile 1'"),
        "line": (raw.replace(b"rate ", b"rate x", 1), r"line\.raw:3: bad rate 'x"),
        "frames": (raw[:t + 5] + struct.pack("<I", 65) + raw[t + 9:],
                   r"frames\.raw: byte %d: trace %d has 65 frames \(at most 64\)" % (t, tid)),
        "cut-trace": (raw[:t + 13], r"cut-trace\.raw: byte %d: truncated dump: the dump that starts "
                                    r"at line 1 has no 'end'" % t),
        "tag": (raw[:s] + b"x" + raw[s + 1:], r"tag\.raw: byte %d: unrecognized item tag 0x78" % s),
        "trace": (raw[:s + 33] + struct.pack("<I", 98) + raw[s + 37:],
                  r"trace\.raw: byte %d: sample refers to trace 98, not written before it" % s),
        "size-0": (raw[:s + 1] + struct.pack("<Q", 0) + raw[s + 9:],
                   r"size-0\.raw: byte %d: sample of size 0" % s),
        "truncated": (raw[:-30], r"truncated\.raw: byte %d: truncated dump: the dump that starts at "
                                 r"line \d+ has no 'end'" % last_s),
        "end": (raw[:e + 1] + b"N" + raw[e + 2:], r"end\.raw: byte %d: 'e' item not followed by 'nd\\n'" % e),
        "nested": (raw[:e] + raw[e + 4:],
                   r"nested\.raw: byte %d: a new dump starts before the previous one's 'end'" % e),
        "binary": (b"la-profile 2\n\xff\xfe\n", r"binary\.raw:2: not text \(invalid UTF-8\)"),
        "binary-3": (raw.replace(b"pid 4242", b"pid \xff42", 1), r"binary-3\.raw:2: not text \(invalid UTF-8\)"),
        "zero-rate": (raw.replace(b"rate 65536\n", b"rate 0\n"), r"zero-rate\.raw:3: a rate of 0 bytes"),
        "no-rate": (no_rate, r"no-rate\.raw:%d: dump has no 'rate' line" % data_line),
        # The version 2 reader names lines.
        "v2-pc": (v2.replace(b"s 1024 1024", b"t 99 1 0xzz\ns 1024 1024", 1),
                  r"v2-pc\.raw:\d+: bad return address '0xzz'"),
    }
    for name, (text, pattern) in cases.items():
        p = path(name + ".raw")
        if text is not None:
            open(p, "wb").write(text)
        elif os.path.exists(p):
            os.remove(p)
        r = run(LA_PROF, p, "--top")
        check(r.returncode == 1 and re.search(pattern, r.stderr) is not None
              and "panicked" not in r.stderr and "backtrace" not in r.stderr.lower()
              and len(r.stderr.splitlines()) == 1,
              "bad input '%s': exit %d, %s" % (name, r.returncode, r.stderr.strip()))
    # The truncated dump is used with --allow-truncated, up to its last
    # complete sample.
    r = run(LA_PROF, path("truncated.raw"), "--allow-truncated", "--top")
    check(r.returncode == 0 and "warning" in r.stderr and "keep_live" in r.stdout,
          "--allow-truncated uses the truncated dump, with a warning: " + r.stderr.strip())
    r = run(LA_PROF, path("p.raw"), "--pprof", path("no/such/dir/p.pb.gz"))
    check(r.returncode == 1 and "cannot write" in r.stderr, "an unwritable output: " + r.stderr.strip())


sys.exit(main())
