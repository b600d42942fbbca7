"""python_example.py: liballoc from Python (ctypes; no compiler needed).

Run from the repository after `make`:
    LIBALLOC_PATH=build PYTHONPATH=bindings/python python3 examples/python_example.py
"""

import liballoc as la

# Blocks are writable memoryviews that know their allocator.
buf = la.smp.alloc(16)
buf[:5] = b"hello"
print("smp block:", bytes(buf[:5]), "from", la.allocator_of(buf))
buf = la.smp.realloc(buf, 1 << 20)  # grows, keeping the contents
print("after realloc:", len(buf), "bytes, starts with", bytes(buf[:5]))
la.smp.free(buf)

# An arena frees everything at the end of the `with` block.
with la.Arena(la.page) as arena:
    parts = [arena.dupe(f"part {i};".encode()) for i in range(3)]
    print("arena:", b"".join(bytes(p) for p in parts), "capacity", arena.capacity)

# A pool hands out fixed-size items in O(1).
with la.Pool(item_size=32, item_align=8) as pool:
    item = pool.create()
    item[:4] = b"item"
    pool.destroy(item)
    print("pool capacity:", pool.capacity)

# The debug allocator raises LeakError when a block is not freed.
try:
    with la.Debug(report_fd=open("/dev/null", "w")) as dbg:
        dbg.alloc(100)  # forgotten
except la.LeakError as e:
    print("debug allocator:", e)

# Out of memory is a MemoryError.
try:
    la.always_failing.alloc(1)
except MemoryError:
    print("always_failing: MemoryError, as expected")
