"""liballoc for Python: the library's allocators through ctypes.

Every allocator is an `Allocator` object. `alloc(size, align=16)` returns a
writable `memoryview` of the block (format "B"); the view knows its block
through `memoryview.obj`, so `allocator_of(view)` gives the allocator and
`free(view)`, `realloc(view, n)` and `resize(view, n)` need nothing else.
Out of memory raises `MemoryError`.

Process-wide allocators: `page`, `c`, `smp`, `always_failing`.
Allocators with state: `Arena`, `FixedBuffer`, `BufferFirst`, `Failing`,
`ThreadSafe`, `Logging`, `Debug`, and the item pool `Pool`. `Arena` and
`Debug` are context managers (`Debug` raises `LeakError` at exit when
blocks leaked); every stateful allocator has `close()`, also called when it
is garbage collected. A block keeps its allocator object alive, but
closing an allocator (or resetting an arena) ends its blocks: do not use
their views afterwards.

`numpy_allocator(allocator)`: a context manager under which numpy arrays
take their data from `allocator` (numpy's NEP 49 handler).
"""

import ctypes

from . import _native as _n
from ._numpy import numpy_allocator, numpy_handler_name

__all__ = [
    "Allocator",
    "Arena",
    "BufferFirst",
    "Debug",
    "Failing",
    "FixedBuffer",
    "LeakError",
    "Logging",
    "Pool",
    "ThreadSafe",
    "allocator_of",
    "numpy_allocator",
    "numpy_handler_name",
    "always_failing",
    "c",
    "page",
    "smp",
    "version",
    "FREE_ALL",
    "RETAIN_CAPACITY",
    "RETAIN_WITH_LIMIT",
]

FREE_ALL = 0
RETAIN_CAPACITY = 1
RETAIN_WITH_LIMIT = 2

_lib = _n.lib


def version():
    """The library's version string, e.g. "0.1.0"."""
    return _lib.la_version().decode()


class LeakError(Exception):
    """Raised by `Debug` at exit (or `check()`) when blocks are still live."""


def _check_align(align):
    if align <= 0 or align & (align - 1):
        raise ValueError(f"alignment must be a power of two, not {align}")


def _block_view(allocator, address, size, align):
    """A writable "B" memoryview over `size` bytes at `address`, whose
    exporter (`view.obj`) records the block and keeps `allocator` alive."""
    arr = (ctypes.c_ubyte * size).from_address(address)
    arr._la_allocator = allocator
    arr._la_address = address
    arr._la_size = size
    arr._la_align = align
    return memoryview(arr).cast("B")


def _block_of(view):
    obj = getattr(view, "obj", None)
    if obj is None or not hasattr(obj, "_la_address"):
        raise TypeError("not a block from a liballoc allocator")
    return obj


def allocator_of(view):
    """The allocator that made the block behind `view`."""
    return _block_of(view)._la_allocator


class Allocator:
    """An `la_allocator` with byte-level helpers.

    `raw` is the `la_allocator` struct, to pass to C code through ctypes.
    """

    def __init__(self, raw, keep=None):
        self._raw = raw
        self._keep = keep  # objects the allocator depends on

    @property
    def raw(self):
        return self._raw

    def alloc(self, size, align=16):
        """A writable memoryview of `size` bytes aligned to `align` (a power
        of two). Raises MemoryError when the allocator has no memory."""
        if size < 0:
            raise ValueError("size must be >= 0")
        _check_align(align)
        p = _lib.la_create(self._raw, size, align)
        if not p:
            raise MemoryError(f"liballoc: out of memory ({size} bytes)")
        return _block_view(self, p, size, align)

    def dupe(self, data, align=1):
        """A new block holding a copy of the bytes-like `data`."""
        data = bytes(data)
        view = self.alloc(len(data), align)
        view[:] = data
        return view

    def free(self, view):
        """Frees the block behind `view` (the view is released)."""
        b = _block_of(view)
        self._own(b)
        if b._la_address is None:
            raise ValueError("block already freed")
        _lib.la_destroy(self._raw, b._la_address, b._la_size, b._la_align)
        b._la_address = None
        _release(view)

    def resize(self, view, new_size):
        """Grows or shrinks the block in place. Returns a view of the new
        size (the old one is released) or None when it cannot (nothing
        changes). `new_size` 0 frees the block and returns an empty view."""
        b = self._live(view)
        ok = _lib.la_resize(self._raw, b._la_address, 1, b._la_size, new_size, b._la_align)
        if not ok:
            return None
        _release(view)
        address = b._la_address
        b._la_address = None
        if new_size == 0:
            return memoryview(b"").cast("B")
        return _block_view(self, address, new_size, b._la_align)

    def realloc(self, view, new_size):
        """Resizes the block, moving it if needed (contents kept up to the
        smaller size). Returns the new view; the old one is released.
        Raises MemoryError (the old block stays valid) when out of memory."""
        b = self._live(view)
        if b._la_size == 0:
            new = self.alloc(new_size, b._la_align)
            b._la_address = None
            _release(view)
            return new
        p = _lib.la_realloc(self._raw, b._la_address, 1, b._la_size, new_size, b._la_align)
        if not p:
            if new_size == 0:
                raise AssertionError("unreachable: realloc to 0 frees")
            raise MemoryError(f"liballoc: out of memory ({new_size} bytes)")
        b._la_address = None
        _release(view)
        return _block_view(self, p, new_size, b._la_align)

    def _own(self, b):
        if b._la_allocator is not self:
            raise ValueError("the block belongs to another allocator")

    def _live(self, view):
        b = _block_of(view)
        self._own(b)
        if b._la_address is None:
            raise ValueError("block already freed")
        return b

    def __repr__(self):
        return f"<liballoc.{type(self).__name__} at {self._raw.ptr or 0:#x}>"


def _release(view):
    try:
        view.release()
    except (BufferError, ValueError):
        pass  # other views still export it; they stay (dangling) as in C


page = Allocator(_lib.la_page_allocator())
c = Allocator(_lib.la_c_allocator())
smp = Allocator(_lib.la_smp_allocator())
always_failing = Allocator(_lib.la_always_failing_allocator())


def _raw_of(child):
    if isinstance(child, Allocator):
        return child.raw
    if isinstance(child, _n.LaAllocator):
        return child
    raise TypeError("expected a liballoc Allocator")


class _Handle(Allocator):
    """An allocator owning an opaque C handle, destroyed by close()."""

    _destroy = None

    def __init__(self, handle, raw, keep):
        if not handle:
            raise MemoryError("liballoc: could not create the allocator")
        self._handle = handle
        super().__init__(raw, keep)

    @property
    def closed(self):
        return self._handle is None

    def close(self):
        """Destroys the allocator; its blocks end with it."""
        if self._handle is not None:
            h, self._handle = self._handle, None
            self._raw = _n.LaAllocator()  # every further call fails
            type(self)._destroy(h)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Arena(_Handle):
    """An arena over `child` (default: smp): allocations are freed all at
    once by `reset()` or `close()` (at the end of a `with` block)."""

    _destroy = staticmethod(_lib.la_arena_destroy)

    def __init__(self, child=None):
        child = smp if child is None else child
        h = _lib.la_arena_create(_raw_of(child))
        super().__init__(h, _lib.la_arena_allocator(h) if h else None, child)

    def reset(self, mode=RETAIN_CAPACITY, limit=0):
        """Frees every block at once; see the arena reset modes."""
        return bool(_lib.la_arena_reset(self._handle, mode, limit))

    @property
    def capacity(self):
        return _lib.la_arena_query_capacity(self._handle)


class Failing(_Handle):
    """Fails the allocation numbered `fail_index` (0-based) and after, and
    resizes from `resize_fail_index`; for out-of-memory tests."""

    _destroy = staticmethod(_lib.la_failing_destroy)

    def __init__(self, child=None, fail_index=0, resize_fail_index=None):
        child = c if child is None else child
        if resize_fail_index is None:
            resize_fail_index = ctypes.c_size_t(-1).value
        h = _lib.la_failing_create(_raw_of(child), fail_index, resize_fail_index)
        super().__init__(h, _lib.la_failing_allocator(h) if h else None, child)

    @property
    def stats(self):
        s = _n.LaFailingStats()
        _lib.la_failing_get_stats(self._handle, ctypes.byref(s))
        return {name: getattr(s, name) for name, _ in s._fields_}


class ThreadSafe(_Handle):
    """`child` behind a fork-safe lock, so threads may share it."""

    _destroy = staticmethod(_lib.la_thread_safe_destroy)

    def __init__(self, child):
        h = _lib.la_thread_safe_create(_raw_of(child))
        super().__init__(h, _lib.la_thread_safe_allocator(h) if h else None, child)


class Logging(_Handle):
    """`child` with every call written as one line to the file descriptor
    `fd` (an int or an object with fileno()); calls below `min_len` bytes
    are not logged."""

    _destroy = staticmethod(_lib.la_logging_destroy)

    def __init__(self, child, fd, min_len=0):
        fileobj = fd if hasattr(fd, "fileno") else None
        fdn = fd.fileno() if fileobj is not None else int(fd)
        h = _lib.la_logging_create(_raw_of(child), fdn, min_len)
        super().__init__(h, _lib.la_logging_allocator(h) if h else None, (child, fileobj))


class FixedBuffer(Allocator):
    """Bump allocation inside a buffer of `size` bytes owned by this object.
    With `thread_safe=True` the lock-free variant is used, so several
    threads may allocate from it at once."""

    def __init__(self, size, thread_safe=False):
        self._buf = (ctypes.c_ubyte * size)()
        self._fb = _n.LaFixedBuffer()
        _lib.la_fixed_buffer_init(ctypes.byref(self._fb), ctypes.addressof(self._buf), size)
        get = (
            _lib.la_fixed_buffer_thread_safe_allocator
            if thread_safe
            else _lib.la_fixed_buffer_allocator
        )
        super().__init__(get(ctypes.byref(self._fb)))

    def reset(self):
        """Frees every block at once."""
        _lib.la_fixed_buffer_reset(ctypes.byref(self._fb))

    def owns(self, view):
        b = _block_of(view)
        return bool(_lib.la_fixed_buffer_owns(ctypes.byref(self._fb), b._la_address, b._la_size))


class BufferFirst(Allocator):
    """A buffer of `size` bytes first, then `fallback` (default: smp)."""

    def __init__(self, size, fallback=None):
        fallback = smp if fallback is None else fallback
        self._buf = (ctypes.c_ubyte * size)()
        self._bf = _n.LaBufferFirst()
        _lib.la_buffer_first_init(
            ctypes.byref(self._bf), ctypes.addressof(self._buf), size, _raw_of(fallback)
        )
        super().__init__(_lib.la_buffer_first_allocator(ctypes.byref(self._bf)), fallback)

    def owns(self, view):
        """Whether the block lives in the buffer (not in the fallback)."""
        return bool(_lib.la_buffer_first_owns(ctypes.byref(self._bf), _block_of(view)._la_address))

    @property
    def used(self):
        return _lib.la_buffer_first_used(ctypes.byref(self._bf))


class Pool:
    """Fixed-size items (`item_size` bytes aligned to `item_align`) from
    `child` (default: smp); O(1) `create()` / `destroy()`."""

    def __init__(self, item_size, item_align=16, child=None):
        _check_align(item_align)
        child = smp if child is None else child
        self._child = child
        self._handle = _lib.la_pool_create(_raw_of(child), item_size, item_align)
        if not self._handle:
            raise MemoryError("liballoc: could not create the pool")
        self.item_size = item_size
        self.item_align = item_align

    def create(self):
        """A writable memoryview of one item."""
        p = _lib.la_pool_create_item(self._handle)
        if not p:
            raise MemoryError("liballoc: pool out of memory")
        return _block_view(self, p, self.item_size, self.item_align)

    def destroy(self, view):
        """Gives the item back for reuse (the view is released)."""
        b = _block_of(view)
        if b._la_allocator is not self or b._la_address is None:
            raise ValueError("not a live item of this pool")
        _lib.la_pool_destroy_item(self._handle, b._la_address)
        b._la_address = None
        _release(view)

    def preheat(self, n):
        """Makes room for `n` more items now."""
        if not _lib.la_pool_preheat(self._handle, n):
            raise MemoryError("liballoc: pool out of memory")

    def reset(self, mode=RETAIN_CAPACITY, limit=0):
        """Ends every item at once."""
        return bool(_lib.la_pool_reset(self._handle, mode, limit))

    @property
    def capacity(self):
        return _lib.la_pool_query_capacity(self._handle)

    def close(self):
        if self._handle is not None:
            h, self._handle = self._handle, None
            _lib.la_pool_destroy(h)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


if _n.has("la_debug_create"):

    class Debug(_Handle):
        """A debug allocator over `backing` (default: c): traces, double-free
        and overflow checks, leak reports. As a context manager it raises
        `LeakError` at exit when blocks are still live. `report_fd` is
        where reports go (default: stderr)."""

        _destroy = staticmethod(_lib.la_debug_destroy)

        def __init__(self, backing=None, report_fd=None, abort_on_error=True):
            backing = c if backing is None else backing
            cfg = _n.LaDebugConfig()
            _lib.la_debug_config_init(ctypes.byref(cfg))
            if report_fd is not None:
                cfg.report_fd = report_fd if isinstance(report_fd, int) else report_fd.fileno()
            cfg.on_error = 0 if abort_on_error else 1
            h = _lib.la_debug_create(_raw_of(backing), ctypes.byref(cfg))
            super().__init__(h, _lib.la_debug_allocator(h) if h else None, backing)

        @property
        def stats(self):
            s = _n.LaDebugStats()
            _lib.la_debug_get_stats(self._handle, ctypes.byref(s))
            return {name: getattr(s, name) for name, _ in s._fields_}

        def detect_leaks(self):
            """Prints a leak report; True when blocks are still live."""
            return bool(_lib.la_debug_detect_leaks(self._handle))

        def check(self):
            """Destroys the allocator and raises LeakError if blocks leaked."""
            if self._handle is None:
                return
            h, self._handle = self._handle, None
            self._raw = _n.LaAllocator()
            live = self._live_summary(h)
            if _lib.la_debug_destroy(h) != 0:
                raise LeakError(f"liballoc: {live} leaked")

        def _live_summary(self, h):
            s = _n.LaDebugStats()
            _lib.la_debug_get_stats(h, ctypes.byref(s))
            return f"{s.live_bytes} byte(s) in {s.live_allocations} allocation(s)"

        def close(self):
            try:
                self.check()
            except LeakError:
                pass

        def __exit__(self, exc_type, *exc):
            if exc_type is not None:
                self.close()
                return False
            self.check()
            return False

else:  # pragma: no cover - older libraries without the debug allocator

    class Debug:  # noqa: D101
        def __init__(self, *args, **kwargs):
            raise NotImplementedError(f"{_n.path} has no debug allocator")
