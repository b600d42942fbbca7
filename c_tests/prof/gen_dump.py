#!/usr/bin/env python3
"""Makes a raw heap profile (the format the sampling runtime writes) from
the sites program's output, with known samples, and prints the totals a
reader of it must estimate, as JSON.

    gen_dump.py SITES_OUTPUT OUT.raw > expected.json
"""
import json
import math
import sys

RATE = 64 * 1024


def weight(size):
    """A sampled block of `size` bytes stands for 1/p blocks."""
    return 1.0 / (1.0 - math.exp(-size / RATE))


def main():
    maps, sites = [], {}
    for line in open(sys.argv[1]):
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
        out.append("la-profile 2\npid 4242\nrate %d\ntime %d\ndropped 0\n" % (RATE, t))
        written = {}  # trace ids written in this dump, by stack

        def trace(pcs):
            """The id of stack pcs, its `t` line written before first use."""
            key = tuple(pcs)
            if key not in written:
                written[key] = 3 * len(written) + 1  # ids need not be dense
                out.append("t %d %d %s\n" % (written[key], len(pcs), " ".join("%x" % p for p in pcs)))
            return written[key]

        out.extend(m + "\n" for m in maps)
        live = {}
        for name, (count, size, req, freed) in plan.items():
            taken = count * (k + 1) // len(times)
            live[name] = 0.0
            for i in range(taken):
                alloc_ms = t - 50 + i % 50
                # a freed site's blocks taken before the previous snapshot
                # are freed by this one, and all are by the last
                free = -1
                if freed and (k == len(times) - 1 or i < count * k // len(times)):
                    free = alloc_ms + 1
                if free == -1:
                    live[name] += req * weight(req)
                tid = trace(sites[name])
                out.append("s %d %d %d %d %d\n" % (size, req, alloc_ms, free, tid))
        out.append("s 16 16 %d -1 %d\n" % (t, trace(unmapped)))
        live["0x10"] = 16 * weight(16)
        out.append("end\n")
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
    with open(sys.argv[2], "w") as f:
        f.write("".join(out))
    json.dump(expected, sys.stdout, indent=1)


main()
