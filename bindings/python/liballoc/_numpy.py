"""numpy arrays on liballoc memory: numpy's data-memory handler (NEP 49).

`numpy_allocator(allocator)` is a context manager. While it is active (in
the current thread or asyncio context: numpy keeps the handler in a context
variable), the data of every numpy array created takes its memory from
`allocator`. numpy records the handler in each array, so an array made
inside the context is freed through the same handler after the context has
exited. The handler holds a reference to `allocator` until its last array
is gone; closing or resetting the allocator earlier ends those arrays'
memory (as it ends any block's).

The handler's C functions are in liballoc/_la_numpy.so, a small CPython-free
library built with the wheel (bindings/python/native/numpy_handler.c); the
capsule numpy wants is made here with ctypes. numpy has no Python-level setter, so the
handler is switched with PyDataMem_SetHandler from numpy's C-API table.
"""

import ctypes
import os
from ctypes import c_char_p, c_size_t, c_void_p, py_object

from . import _native as _n

_SET_HANDLER_SLOT = 304  # PyDataMem_SetHandler in numpy's _ARRAY_API (1.22 and later, 2.x)

_shim = None
_set_handler = None


def _api(name, restype, *argtypes):
    """A private prototype of a CPython function (called with the GIL held),
    leaving ctypes.pythonapi's shared attributes as they are."""
    return ctypes.PYFUNCTYPE(restype, *argtypes)((name, ctypes.pythonapi))


_capsule_get_pointer = _api("PyCapsule_GetPointer", c_void_p, py_object, c_char_p)
_capsule_new = _api("PyCapsule_New", py_object, c_void_p, c_void_p, c_void_p)
_incref = _api("Py_IncRef", None, py_object)
_decref = _api("Py_DecRef", None, py_object)


def _load_shim():
    global _shim
    if _shim is None:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "_la_numpy.so")
        try:
            shim = ctypes.CDLL(path)
        except OSError as e:
            raise ImportError(
                f"liballoc: cannot load {path} (numpy support); install the package "
                f"with pip so that it is built: {e}"
            ) from None
        shim.la_np_init.restype = None
        shim.la_np_init.argtypes = [c_void_p, c_void_p]
        shim.la_np_box_new.restype = c_void_p
        shim.la_np_box_new.argtypes = [_n.LaAllocator, c_char_p, c_void_p]
        shim.la_np_box_free.restype = None
        shim.la_np_box_free.argtypes = [c_void_p]
        shim.la_np_capsule_name.restype = c_void_p
        shim.la_np_capsule_name.argtypes = []
        for name in ("la_np_live_blocks", "la_np_live_bytes"):
            getattr(shim, name).restype = c_size_t
            getattr(shim, name).argtypes = [c_void_p]
        shim.la_np_init(
            ctypes.cast(ctypes.pythonapi.PyCapsule_GetPointer, c_void_p),
            ctypes.cast(ctypes.pythonapi.Py_DecRef, c_void_p),
        )
        _shim = shim
    return _shim


def _numpy_set_handler():
    """PyDataMem_SetHandler(handler) -> previous handler, from numpy."""
    global _set_handler
    if _set_handler is None:
        try:
            import numpy._core._multiarray_umath as mu  # numpy 2
        except ImportError:
            import numpy.core._multiarray_umath as mu  # numpy 1.22+
        table = _capsule_get_pointer(mu._ARRAY_API, None)
        fn = ctypes.cast(table, ctypes.POINTER(c_void_p))[_SET_HANDLER_SLOT]
        # PYFUNCTYPE: called with the GIL held; a NULL result raises.
        _set_handler = ctypes.PYFUNCTYPE(py_object, py_object)(fn)
    return _set_handler


def _multiarray():
    try:
        from numpy._core import multiarray  # numpy 2
    except ImportError:
        from numpy.core import multiarray  # numpy 1.22+
    return multiarray


def numpy_handler_name(array=None):
    """The name of numpy's memory handler for `array` (None when numpy
    does not own its data), or of the handler now in effect: numpy's
    get_handler_name, wherever this numpy version keeps it."""
    ma = _multiarray()
    return ma.get_handler_name() if array is None else ma.get_handler_name(array)


def _make_capsule(allocator, name):
    shim = _load_shim()
    raw = allocator.raw if hasattr(allocator, "raw") else allocator
    if not isinstance(raw, _n.LaAllocator):
        raise TypeError("expected a liballoc Allocator")
    if not raw.vtable:
        raise ValueError("the allocator is closed")
    box = shim.la_np_box_new(raw, name.encode()[:126], id(allocator))
    if not box:
        raise MemoryError("liballoc: cannot make a numpy handler")
    _incref(allocator)  # dropped by the capsule's destructor
    try:
        capsule = _capsule_new(
            box, shim.la_np_capsule_name(), ctypes.cast(shim.la_np_capsule_destructor, c_void_p)
        )
    except BaseException:
        _decref(allocator)
        shim.la_np_box_free(box)
        raise
    return capsule, box


class numpy_allocator:  # noqa: N801 - used like a function, as a context manager
    """Context manager: numpy arrays created inside take their data from
    `allocator` (a liballoc Allocator). `name` is what
    `numpy_handler_name(array)` (numpy's get_handler_name) reports
    (default "liballoc.<class name>").

        with liballoc.Arena() as arena:
            with liballoc.numpy_allocator(arena):
                a = numpy.ones(1000)        # on the arena
            ...                             # use a; drop it before the arena

    `live_blocks` / `live_bytes`: the blocks (and requested bytes) of this
    handler's arrays not yet freed.
    """

    def __init__(self, allocator, name=None):
        self.allocator = allocator
        self.name = name or f"liballoc.{type(allocator).__name__}"
        self.handler, self._box = _make_capsule(allocator, self.name)
        self._previous = []

    def __enter__(self):
        self._previous.append(_numpy_set_handler()(self.handler))
        return self

    def __exit__(self, *exc):
        _numpy_set_handler()(self._previous.pop())
        return False

    @property
    def live_blocks(self):
        return _load_shim().la_np_live_blocks(self._box)

    @property
    def live_bytes(self):
        return _load_shim().la_np_live_bytes(self._box)
