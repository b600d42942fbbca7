"""numpy arrays on liballoc memory (numpy_allocator, NEP 49), with numpy
from PyPI; skipped where numpy is not installed."""

import ctypes
import gc
import os
import sys
import tempfile
import threading
import weakref

import pytest

import liballoc as la

np = pytest.importorskip("numpy")
try:
    from numpy._core import multiarray as _ma  # numpy 2
except ImportError:
    from numpy.core import multiarray as _ma  # numpy 1.22+


def handler_name(a=None):
    return _ma.get_handler_name() if a is None else _ma.get_handler_name(a)


def test_arrays_inside_take_the_handler_and_outlive_it():
    default = handler_name()
    with la.Arena(la.smp) as arena:
        with la.numpy_allocator(arena) as h:
            assert handler_name() == "liballoc.Arena"
            a = np.arange(10_000, dtype=np.float64)
            b = a * 2.0
            z = np.zeros((64, 64), dtype=np.int32)
        assert handler_name() == default
        outside = np.arange(10)
        assert handler_name(outside) == default
        for x in (a, b, z):
            assert handler_name(x) == "liballoc.Arena"
        assert h.live_blocks == 3
        assert h.live_bytes == a.nbytes + b.nbytes + z.nbytes
        # The data is correct after the context, and arrays keep working.
        assert a.sum() == 10_000 * 9_999 / 2
        assert (b == np.arange(10_000) * 2.0).all()
        assert not z.any()
        del a, b, z, x
        gc.collect()
        assert h.live_blocks == 0 and h.live_bytes == 0


def test_blocks_are_freed_by_their_handler_after_the_context():
    with la.Debug(la.c) as dbg:  # raises LeakError at exit if a block leaked
        with la.numpy_allocator(dbg, name="tracked") as h:
            arrays = [np.full(n, n, dtype=np.int64) for n in (1, 100, 10_000)]
        assert dbg.stats["live_allocations"] == 3
        with la.numpy_allocator(la.smp):  # another handler is active now
            del arrays
            gc.collect()
        assert h.live_blocks == 0
        assert dbg.stats["live_allocations"] == 0
        assert dbg.stats["errors"] == 0


def test_realloc_and_calloc_through_the_handler():
    with la.numpy_allocator(la.smp) as h:
        a = np.arange(100, dtype=np.int64)
        a.resize(1_000_000, refcheck=False)  # numpy's realloc
        assert (a[:100] == np.arange(100)).all() and not a[100:].any()
        a.resize(10, refcheck=False)
        assert list(a) == list(range(10))
        # calloc on memory that held other data is zeroed
        junk = [np.full(4096, 0x5A, dtype=np.uint8) for _ in range(8)]
        del junk
        zs = [np.zeros(4096, dtype=np.uint8) for _ in range(8)]
        assert not any(z.any() for z in zs)
        assert handler_name(a) == "liballoc.Allocator"
    del a, zs
    gc.collect()
    assert h.live_blocks == 0


def test_arena_frees_everything_once_arrays_are_gone():
    dbg = la.Debug(la.c)  # counts what the arena takes from its backing
    arena = la.Arena(dbg)
    own = dbg.stats["live_allocations"]  # the arena's own state
    with la.numpy_allocator(arena) as h:
        arrays = [np.ones(1 << k) for k in range(4, 16)]
        temp = sum(x.sum() for x in arrays)
    assert temp == sum(1 << k for k in range(4, 16))
    del arrays
    gc.collect()
    assert h.live_blocks == 0
    assert dbg.stats["live_allocations"] > own  # the arena still holds its memory
    arena.reset(la.FREE_ALL)
    assert dbg.stats["live_allocations"] == own
    with la.numpy_allocator(arena):
        again = np.arange(1000)
    assert again.sum() == 999 * 1000 // 2
    del again
    gc.collect()
    arena.close()
    dbg.check()  # LeakError if the arena left anything behind


def test_the_handler_keeps_its_allocator_alive_until_its_last_array():
    h = la.numpy_allocator(la.Arena(la.smp))
    with h:
        a = np.arange(1000)
    arena = weakref.ref(h.allocator)
    del h
    gc.collect()
    assert arena() is not None  # the handler, kept by `a`, holds it
    assert a.sum() == 999 * 1000 // 2
    del a  # the last reference to the handler: its destructor lets go
    gc.collect()
    assert arena() is None


def test_debug_allocator_reports_a_write_past_an_array():
    with tempfile.TemporaryFile() as report:
        dbg = la.Debug(la.c, report_fd=report, abort_on_error=False)
        with la.numpy_allocator(dbg):
            a = np.zeros(100, dtype=np.uint8)
        # What a buggy C extension might do: write 8 bytes past the data.
        ctypes.memmove(a.ctypes.data + a.nbytes, b"OVERFLOW", 8)
        assert dbg.stats["errors"] == 0
        del a  # numpy frees the data through the handler: checked there
        gc.collect()
        stats = dbg.stats
        dbg.close()
        report.seek(0)
        text = report.read().decode(errors="replace")
    assert stats["errors"] >= 1, text
    assert "liballoc" in text and "overflow" in text.lower(), text


def test_numpy_handler_name_is_numpys():
    with la.numpy_allocator(la.c, name="x" * 200):  # cut to numpy's 126
        a = np.ones(3)
        assert la.numpy_handler_name() == handler_name() == "x" * 126
    assert la.numpy_handler_name(a) == handler_name(a) == "x" * 126
    assert la.numpy_handler_name(a[1:]) is None  # a view owns no data


def test_the_handler_is_per_thread_and_nests():
    seen = {}
    with la.numpy_allocator(la.Arena(la.smp), name="outer") as outer:
        t = threading.Thread(target=lambda: seen.update(name=handler_name(np.ones(4))))
        t.start()
        t.join()
        with la.numpy_allocator(la.c, name="inner"):
            assert handler_name(np.ones(4)) == "inner"
            with outer:  # the same handler again, re-entered
                assert handler_name(np.ones(4)) == "outer"
            assert handler_name() == "inner"
        assert handler_name() == "outer"
    assert seen["name"] != "outer"  # another thread keeps its own handler
    assert outer.live_blocks == 0


def test_closed_allocator_is_refused():
    arena = la.Arena(la.smp)
    arena.close()
    with pytest.raises(ValueError):
        la.numpy_allocator(arena)


@pytest.mark.skipif(not os.environ.get("LIBALLOC_TEST_INSTALLED"), reason="run on the installed wheel only")
def test_installed_package_uses_its_bundled_library():
    pkg = os.path.dirname(os.path.abspath(la.__file__))
    assert pkg.startswith(os.path.abspath(sys.prefix)), (pkg, sys.prefix)
    assert os.path.dirname(la._native.path) == pkg
    assert os.path.exists(os.path.join(pkg, "_la_numpy.so"))
    assert "LIBALLOC_PATH" not in os.environ
