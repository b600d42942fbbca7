//! `la_profile_dump`: the heap profiler's dump on demand, in the C API.
//!
//! The profiler itself is part of the malloc shim (`src/preload/profile.rs`):
//! only there does the library see every allocation of the program. The
//! function is also in `liballoc.so` so that a program can call it whether
//! or not it runs under the shim: when the shim is loaded (`LD_PRELOAD`),
//! its definition comes first and is the one called; without the shim this
//! one does nothing and returns false.

use core::ffi::c_int;

/// Writes the heap profile sampled so far to file descriptor `fd`, in the
/// raw format `la-prof` reads (one dump: a text header from
/// `la-profile 3`, binary trace and sample items, then `end`; the
/// descriptor is neither closed nor rewound, so successive dumps
/// append). Allocates nothing and is async-signal-safe.
///
/// Returns true when a dump was written; false when the program does not
/// run under the malloc shim (`liballoc_preload.so`) with profiling on
/// (`LA_PROFILE`, `LA_PROFILE_RATE`, `LA_PROFILE_INTERVAL` or
/// `LA_PROFILE_SIGNAL` set), or while another dump is being written. Write
/// errors are not reported.
#[unsafe(no_mangle)]
pub extern "C" fn la_profile_dump(fd: c_int) -> bool {
    #[cfg(feature = "preload")]
    {
        crate::preload::profile::dump(fd)
    }
    #[cfg(not(feature = "preload"))]
    {
        let _ = fd;
        false
    }
}
