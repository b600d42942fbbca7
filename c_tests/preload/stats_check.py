"""Checks LA_STATS=json output: the last line of stderr must be one JSON
object with the shim's fields, consistent with a known number of
allocations. Usage: stats_check.py FILE MIN_ALLOCS"""
import json
import sys

lines = [l for l in open(sys.argv[1]).read().splitlines() if l.startswith("{")]
assert len(lines) == 1, "expected exactly one JSON line, got %d" % len(lines)
s = json.loads(lines[0])
want = int(sys.argv[2])
assert s["liballoc_stats"] == 1
assert s["calls"]["alloc"] >= want, s["calls"]
assert s["calls"]["free"] >= want, s["calls"]
assert s["total"]["allocs"] >= want
assert s["total"]["live_bytes"] <= s["total"]["peak_bytes"]
assert sum(c["allocs"] for c in s["classes"]) == s["total"]["allocs"]
assert all(c["live_bytes"] <= c["peak_bytes"] for c in s["classes"])
assert s["heap"]["committed_bytes"] > 0 and s["heap"]["thread_heaps"] >= 1
assert all(c["block_size"] > 0 or c["huge"] for c in s["classes"])
sc = s["syscalls"]
assert sc["mmap"] >= 1, sc
assert all(sc[k] >= 0 for k in ("munmap", "madvise", "mremap", "purged_bytes")), sc
assert s["process"]["rss_bytes"] > 0 and s["process"]["peak_rss_bytes"] > 0
assert s["process"]["wall_s"] >= 0 and s["process"]["user_s"] >= 0
print("stats json ok: %d allocations, peak %d bytes, %d classes"
      % (s["total"]["allocs"], s["total"]["peak_bytes"], len(s["classes"])))
