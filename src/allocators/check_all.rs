//! `la_check_all_allocation_failures`: Zig's
//! `std.testing.checkAllAllocationFailures` for C.
//!
//! The test function runs once on a debug allocator over `backing`, through
//! a failing allocator (`failing.rs`) that never fails, to learn how many
//! allocations it makes. Then it runs
//! once per allocation index `i`, with allocation `i` (and every later one,
//! as Zig's `FailingAllocator` does) failing. Each run must return non-zero
//! (the failure was propagated), must reach index `i` (same allocation
//! pattern as the first run) and must free everything (the debug allocator
//! reports leaks with traces). The first problem found is reported on
//! stderr, with the trace of the induced failure (which the failing
//! allocator records), and returned as an `la_check` code.

use core::ffi::c_void;
use core::fmt::Write;

use super::debug::{la_check, la_debug, la_debug_config, la_debug_on_error};
use super::failing::{LA_FAILING_MAX_FRAMES, la_failing};
use crate::diag::report::{self, TraceRef};
use crate::diag::trace;
use crate::vtable::{ChildAllocator, la_allocator};

/// The test function type.
pub type TestFn = unsafe extern "C" fn(la_allocator, *mut c_void) -> libc::c_int;

/// A function checked by `la_check_all_allocation_failures`: it gets the
/// allocator to use and its context, returns 0 on success and non-zero on
/// failure (out of memory included).
#[allow(non_camel_case_types)]
pub type la_check_test_fn = Option<unsafe extern "C" fn(la_allocator, *mut c_void) -> libc::c_int>;

fn headline(f: &la_failing, what: core::fmt::Arguments<'_>) {
    let mut tr = [0usize; LA_FAILING_MAX_FRAMES];
    let n = f.stack_trace(&mut tr);
    report::misuse(
        2,
        |o| {
            let _ = o.write_fmt(what);
        },
        &[TraceRef {
            label: "the failed allocation was requested",
            tid: 0,
            frames: &tr[..n],
        }],
    );
}

/// One run with allocation `fail_index` failing; returns the test's result,
/// whether the failure was induced, the allocations made and the debug
/// allocator's verdict.
fn run(
    backing: la_allocator,
    test: TestFn,
    ctx: *mut c_void,
    fail_index: usize,
) -> Option<(i32, la_failing, la_check)> {
    let cfg = la_debug_config {
        on_error: la_debug_on_error::LA_DEBUG_CONTINUE,
        ..la_debug_config::default()
    };
    let d = la_debug::create(backing, &cfg);
    if d.is_null() {
        return None;
    }
    // SAFETY: d is a fresh instance.
    let child = ChildAllocator(unsafe { (*d).allocator() });
    let f = la_failing::new(child, fail_index, usize::MAX);
    // SAFETY: the caller's test function, given a valid allocator and its ctx.
    let rc = unsafe { test(f.allocator(), ctx) };
    // SAFETY: d is live and unused after this.
    let errors = unsafe { (*d).stats() }.errors;
    // SAFETY: as above.
    let mut verdict = unsafe { la_debug::destroy(d) };
    if verdict == la_check::LA_CHECK_OK && errors > 0 {
        verdict = la_check::LA_CHECK_MISUSE;
    }
    Some((rc, f, verdict))
}

/// Runs `test` once to count its allocations, then once per allocation with
/// that allocation failing, checking that every failure is reported (the
/// test returns non-zero), that nothing leaks and that the allocation
/// pattern does not change (Zig's `checkAllAllocationFailures`).
///
/// Parameters: `backing` the allocator the runs draw from (wrapped in a
/// debug allocator for leak detection, then a failing allocator); `test` the
/// function under test: it gets the allocator to use and `ctx`, returns 0 on
/// success and non-zero on failure (out of memory included), and must free
/// everything it allocates; `ctx` passed through.
///
/// Returns: `LA_CHECK_OK`; `LA_CHECK_TEST_FAILED` when the first run fails;
/// `LA_CHECK_LEAK` when a run leaks (the leak report names the sites);
/// `LA_CHECK_SWALLOWED_FAILURE` when a run returns 0 although an allocation
/// failed; `LA_CHECK_NONDETERMINISTIC` when a run never reaches the failing
/// index; `LA_CHECK_MISUSE` when the debug allocator reported misuse;
/// `LA_CHECK_OUT_OF_MEMORY` when the checker could not run (or `test` is
/// NULL). Problems are also reported on stderr.
///
/// Thread safety: each call is independent; `test` runs on the calling
/// thread.
///
/// # Safety
/// `backing` is a valid allocator; `test` is NULL or a function honouring
/// the contract above.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_check_all_allocation_failures(
    backing: la_allocator,
    test: la_check_test_fn,
    ctx: *mut c_void,
) -> libc::c_int {
    trace::init();
    let Some(test) = test else {
        return la_check::LA_CHECK_OUT_OF_MEMORY as libc::c_int;
    };
    if backing.vtable.is_null() {
        return la_check::LA_CHECK_OUT_OF_MEMORY as libc::c_int;
    }
    let Some((rc, f, verdict)) = run(backing, test, ctx, usize::MAX) else {
        return la_check::LA_CHECK_OUT_OF_MEMORY as libc::c_int;
    };
    if rc != 0 {
        let mut out = crate::sys::write::Writer::fd(2);
        let _ = writeln!(
            out,
            "liballoc: error: check_all_allocation_failures: the test function failed ({rc}) with no failure induced"
        );
        return la_check::LA_CHECK_TEST_FAILED as libc::c_int;
    }
    if verdict != la_check::LA_CHECK_OK {
        return verdict as libc::c_int;
    }
    let count = f.allocations();
    for i in 0..count {
        let Some((rc, f, verdict)) = run(backing, test, ctx, i) else {
            return la_check::LA_CHECK_OUT_OF_MEMORY as libc::c_int;
        };
        if !f.has_induced_failure() {
            let mut out = crate::sys::write::Writer::fd(2);
            let _ = writeln!(
                out,
                "liballoc: error: check_all_allocation_failures: nondeterministic memory usage: allocation #{i} of {count} was never requested when set to fail"
            );
            return la_check::LA_CHECK_NONDETERMINISTIC as libc::c_int;
        }
        if rc == 0 {
            headline(
                &f,
                format_args!(
                    "check_all_allocation_failures: allocation #{i} of {count} failed, but the test function returned 0 (the failure was swallowed)"
                ),
            );
            return la_check::LA_CHECK_SWALLOWED_FAILURE as libc::c_int;
        }
        if verdict != la_check::LA_CHECK_OK {
            headline(
                &f,
                format_args!(
                    "check_all_allocation_failures: {} after allocation #{i} of {count} failed",
                    if verdict == la_check::LA_CHECK_LEAK {
                        "memory leaked (see the leak report above)"
                    } else {
                        "misuse was reported"
                    }
                ),
            );
            return verdict as libc::c_int;
        }
    }
    la_check::LA_CHECK_OK as libc::c_int
}
