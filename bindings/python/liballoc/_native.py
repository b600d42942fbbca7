"""Loading liballoc.so and declaring its C functions for ctypes.

The library is looked for, in order: next to this package (the copy a wheel
bundles, so an installed package always uses its own), the LIBALLOC_PATH
environment variable (a path to the .so or to a directory holding it; for
a source checkout), then the system's dynamic loader ("liballoc.so.0",
"liballoc.so").
Every prototype matches include/liballoc.h; argument and result types are
declared so that ctypes never guesses (pointers stay 64-bit, sizes are
size_t).
"""

import ctypes
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int,
    c_int32,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)

c_uintptr = c_size_t  # uintptr_t is size_t-sized on every supported target


class LaAllocator(Structure):
    """la_allocator: {ptr, vtable}, passed by value."""

    _fields_ = [("ptr", c_void_p), ("vtable", c_void_p)]


class LaFixedBuffer(Structure):
    _fields_ = [("buffer", c_void_p), ("len", c_size_t), ("end_index", c_size_t)]


class LaBufferFirst(Structure):
    _fields_ = [
        ("buffer", c_void_p),
        ("len", c_size_t),
        ("end_index", c_size_t),
        ("fallback", LaAllocator),
    ]


class LaFailingStats(Structure):
    _fields_ = [
        ("allocations", c_size_t),
        ("deallocations", c_size_t),
        ("allocated_bytes", c_size_t),
        ("freed_bytes", c_size_t),
        ("has_induced_failure", c_bool),
    ]


class LaDebugConfig(Structure):
    _fields_ = [
        ("stack_trace_frames", c_size_t),
        ("on_error", c_int),
        ("report_fd", c_int32),
        ("never_reuse", c_bool),
        ("check_write_after_free", c_bool),
        ("quarantine_bytes", c_size_t),
        ("memory_limit", c_size_t),
        ("guard_page_min_len", c_size_t),
        ("canary", c_uint64),
        ("free_fill_max_len", c_size_t),
    ]


class LaDebugStats(Structure):
    _fields_ = [
        ("live_bytes", c_size_t),
        ("live_allocations", c_size_t),
        ("peak_bytes", c_size_t),
        ("total_allocations", c_size_t),
        ("total_frees", c_size_t),
        ("errors", c_size_t),
        ("last_error", c_int),
    ]


CHECK_TEST_FN = CFUNCTYPE(c_int, LaAllocator, c_void_p)


def _candidates():
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("liballoc.so", "liballoc.so.0"):
        path = os.path.join(here, name)
        if os.path.exists(path):
            yield path
    env = os.environ.get("LIBALLOC_PATH")
    if env:
        if os.path.isdir(env):
            yield os.path.join(env, "liballoc.so")
        else:
            yield env
    yield "liballoc.so.0"
    yield "liballoc.so"


def _load():
    errors = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            errors.append(f"{path}: {e}")
    raise ImportError(
        "liballoc: cannot load liballoc.so; set LIBALLOC_PATH to the library "
        "or its directory, put it next to the package, or install it.\n  "
        + "\n  ".join(errors)
    )


lib, path = _load()

P = c_void_p
A = LaAllocator
_PROTOTYPES = {
    # name: (restype, argtypes)
    "la_version": (c_char_p, []),
    "la_raw_alloc": (P, [A, c_size_t, c_uint8, c_uintptr]),
    "la_raw_resize": (c_bool, [A, P, c_size_t, c_uint8, c_size_t, c_uintptr]),
    "la_raw_remap": (P, [A, P, c_size_t, c_uint8, c_size_t, c_uintptr]),
    "la_raw_free": (None, [A, P, c_size_t, c_uint8, c_uintptr]),
    "la_create": (P, [A, c_size_t, c_size_t]),
    "la_destroy": (None, [A, P, c_size_t, c_size_t]),
    "la_resize": (c_bool, [A, P, c_size_t, c_size_t, c_size_t, c_size_t]),
    "la_realloc": (P, [A, P, c_size_t, c_size_t, c_size_t, c_size_t]),
    "la_free": (None, [A, P, c_size_t, c_size_t, c_size_t]),
    "la_page_allocator": (A, []),
    "la_c_allocator": (A, []),
    "la_smp_allocator": (A, []),
    "la_always_failing_allocator": (A, []),
    "la_fixed_buffer_init": (None, [POINTER(LaFixedBuffer), P, c_size_t]),
    "la_fixed_buffer_allocator": (A, [POINTER(LaFixedBuffer)]),
    "la_fixed_buffer_thread_safe_allocator": (A, [POINTER(LaFixedBuffer)]),
    "la_fixed_buffer_reset": (None, [POINTER(LaFixedBuffer)]),
    "la_fixed_buffer_owns": (c_bool, [POINTER(LaFixedBuffer), P, c_size_t]),
    "la_arena_create": (P, [A]),
    "la_arena_allocator": (A, [P]),
    "la_arena_reset": (c_bool, [P, c_uint32, c_size_t]),
    "la_arena_query_capacity": (c_size_t, [P]),
    "la_arena_destroy": (None, [P]),
    "la_failing_create": (P, [A, c_size_t, c_size_t]),
    "la_failing_allocator": (A, [P]),
    "la_failing_get_stats": (None, [P, POINTER(LaFailingStats)]),
    "la_failing_destroy": (None, [P]),
    "la_buffer_first_init": (None, [POINTER(LaBufferFirst), P, c_size_t, A]),
    "la_buffer_first_allocator": (A, [POINTER(LaBufferFirst)]),
    "la_buffer_first_owns": (c_bool, [POINTER(LaBufferFirst), P]),
    "la_buffer_first_used": (c_size_t, [POINTER(LaBufferFirst)]),
    "la_pool_create": (P, [A, c_size_t, c_size_t]),
    "la_pool_create_item": (P, [P]),
    "la_pool_destroy_item": (None, [P, P]),
    "la_pool_preheat": (c_bool, [P, c_size_t]),
    "la_pool_reset": (c_bool, [P, c_uint32, c_size_t]),
    "la_pool_query_capacity": (c_size_t, [P]),
    "la_pool_destroy": (None, [P]),
    "la_thread_safe_create": (P, [A]),
    "la_thread_safe_allocator": (A, [P]),
    "la_thread_safe_destroy": (None, [P]),
    "la_logging_create": (P, [A, c_int, c_size_t]),
    "la_logging_allocator": (A, [P]),
    "la_logging_destroy": (None, [P]),
    # optional: present when the library has the debug allocator
    "la_debug_config_init": (None, [POINTER(LaDebugConfig)]),
    "la_debug_create": (P, [A, POINTER(LaDebugConfig)]),
    "la_debug_allocator": (A, [P]),
    "la_debug_detect_leaks": (c_bool, [P]),
    "la_debug_get_stats": (None, [P, POINTER(LaDebugStats)]),
    "la_debug_destroy": (c_int, [P]),
}

OPTIONAL = {name for name in _PROTOTYPES if name.startswith("la_debug_")}

for _name, (_res, _args) in _PROTOTYPES.items():
    try:
        _fn = getattr(lib, _name)
    except AttributeError:
        if _name in OPTIONAL:
            continue
        raise ImportError(f"liballoc: {path} lacks {_name}; is it an older version?")
    _fn.restype = _res
    _fn.argtypes = _args


def has(name):
    """Whether the loaded library exports `name`."""
    return hasattr(lib, name)
