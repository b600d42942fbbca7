#!/usr/bin/env python3
"""Makes a raw heap profile (the format the sampling runtime writes:
version 3, a text header and binary items) from the sites program's output,
with known samples, and prints the totals a reader of it must estimate, as
JSON. With --v2, the same samples in version 2 (all text), which la-prof
still reads.

    gen_dump.py [--v2] SITES_OUTPUT OUT.raw > expected.json
"""
import json
import math
import struct
import sys

RATE = 64 * 1024
LIVE = 2**64 - 1  # a version 3 sample's free time while the block is live


def weight(size):
    """A sampled block of `size` bytes stands for 1/p blocks."""
    return 1.0 / (1.0 - math.exp(-size / RATE))


def header(version, t, maps):
    """A dump's text header, up to its items."""
    text = "la-profile %d\npid 4242\nrate %d\ntime %d\ndropped 0\n" % (version, RATE, t)
    text += "".join(m + "\n" for m in maps)
    if version == 3:
        text += "data\n"
    return text.encode()


def trace_item(version, tid, pcs):
    """A trace: a `t` item (version 3) or line (version 2)."""
    if version == 3:
        return struct.pack("<cII%dQ" % len(pcs), b"t", tid, len(pcs), *pcs)
    return ("t %d %d %s\n" % (tid, len(pcs), " ".join("%x" % p for p in pcs))).encode()


def sample_item(version, size, req, alloc_ms, free_ms, tid):
    """A sample (free_ms None: live): an `s` item or line."""
    if version == 3:
        free = LIVE if free_ms is None else free_ms
        return struct.pack("<cQQQQI", b"s", size, req, alloc_ms, free, tid)
    free = -1 if free_ms is None else free_ms
    return ("s %d %d %d %d %d\n" % (size, req, alloc_ms, free, tid)).encode()


def main():
    args = sys.argv[1:]
    version = 3
    if args and args[0] == "--v2":
        version = 2
        args = args[1:]
    sites_out, raw = args
    maps, sites = [], {}
    for line in open(sites_out):
        f = line.split()
        if f[0] == "map":
            maps.append(line.rstrip("\n"))
        elif f[0] == "site":
            sites[f[1]] = [int(f[2], 16), int(f[3], 16)]

    # site: (count, size, requested, freed at ms or None), per snapshot
    # time the number of samples taken by then.
    plan = {
        "churn_freed": (40, 1024, 1024, True),
        "keep_live": (30, 102400, 102400, False),
        "leak_in_lib": (20, 4096, 4000, False),
    }
    unmapped = [0x10]  # a return address in no mapping
    times = [100, 200, 300]
    out = []
    expected = {"rate": RATE, "sites": {}, "snapshots": []}
    for k, t in enumerate(times):
        out.append(header(version, t, maps))
        written = {}  # trace ids written in this dump, by stack

        def trace(pcs):
            """The id of stack pcs, its trace written before first use."""
            key = tuple(pcs)
            if key not in written:
                written[key] = 3 * len(written) + 1  # ids need not be dense
                out.append(trace_item(version, written[key], pcs))
            return written[key]

        live = {}
        for name, (count, size, req, freed) in plan.items():
            taken = count * (k + 1) // len(times)
            live[name] = 0.0
            for i in range(taken):
                alloc_ms = t - 50 + i % 50
                # a freed site's blocks taken before the previous snapshot
                # are freed by this one, and all are by the last
                free = None
                if freed and (k == len(times) - 1 or i < count * k // len(times)):
                    free = alloc_ms + 1
                if free is None:
                    live[name] += req * weight(req)
                tid = trace(sites[name])
                out.append(sample_item(version, size, req, alloc_ms, free, tid))
        out.append(sample_item(version, 16, 16, t, None, trace(unmapped)))
        live["0x10"] = 16 * weight(16)
        out.append(b"end\n")
        expected["snapshots"].append({"time_ms": t, "live": live})

    for name, (count, size, req, freed) in plan.items():
        w = weight(req)
        expected["sites"][name] = {
            "alloc_bytes": count * req * w,
            "alloc_objects": count * w,
            "inuse_bytes": 0.0 if freed else count * req * w,
            "inuse_objects": 0.0 if freed else count * w,
        }
    w = weight(16)
    expected["sites"]["0x10"] = {"alloc_bytes": 16 * w, "alloc_objects": w,
                                 "inuse_bytes": 16 * w, "inuse_objects": w}
    with open(raw, "wb") as f:
        f.write(b"".join(out))
    json.dump(expected, sys.stdout, indent=1)


main()
