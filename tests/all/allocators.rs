//! Every allocator under test, built the same way: a constructor giving an
//! `la_allocator`, what the tests may expect of it, and its teardown.

use std::ffi::c_void;
use std::fs::File;
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use liballoc::allocators::arena::{
    la_arena, la_arena_allocator, la_arena_create, la_arena_destroy,
};
use liballoc::allocators::buffer_first::{
    la_buffer_first, la_buffer_first_allocator, la_buffer_first_init,
};
use liballoc::allocators::c::la_c_allocator;
use liballoc::allocators::debug::{
    la_check, la_debug, la_debug_allocator, la_debug_config, la_debug_create, la_debug_destroy,
    la_debug_on_error,
};
use liballoc::allocators::failing::{
    la_failing, la_failing_allocator, la_failing_create, la_failing_destroy,
};
use liballoc::allocators::fixed_buffer::{
    la_fixed_buffer, la_fixed_buffer_allocator, la_fixed_buffer_init,
    la_fixed_buffer_thread_safe_allocator,
};
use liballoc::allocators::logging::{
    la_logging, la_logging_allocator, la_logging_create, la_logging_destroy,
};
use liballoc::allocators::page::la_page_allocator;
use liballoc::allocators::smp::la_smp_allocator;
use liballoc::allocators::thread_safe::{
    la_thread_safe, la_thread_safe_allocator, la_thread_safe_create, la_thread_safe_destroy,
};
use liballoc::vtable::{la_raw_alloc, la_raw_free, la_raw_remap, la_raw_resize};
use liballoc::{la_alignment, la_allocator, la_vtable};

/// Bytes of buffer given to each fixed-buffer allocator.
pub const FIXED_LEN: usize = 4 << 20;

/// Bytes of buffer given to each buffer-first allocator (small, so that
/// blocks go both to the buffer and to the fallback).
pub const BUFFER_FIRST_LEN: usize = 8192;

/// The registry of allocators under test, the one list: every allocator,
/// as `Variant => name`. `for_each_kind!(m)` hands the whole list to the
/// macro `m`; [`Kind`] and [`Kind::ALL`] are made from it, and so are the
/// per-allocator tests of each suite (`model.rs`), so an allocator added
/// here (with its arm in [`Subject::new`]) is in every suite. The C
/// suites' and the Zig tests' list is `c_tests/registry.h`.
macro_rules! for_each_kind {
    ($m:ident) => {
        $m! {
            Page => page,
            C => c,
            Smp => smp,
            FixedBuffer => fixed_buffer,
            ThreadSafeFixedBuffer => thread_safe_fixed_buffer,
            ArenaOverC => arena_over_c,
            ArenaOverPage => arena_over_page,
            ArenaOverSmp => arena_over_smp,
            ArenaOverFlaky => arena_over_flaky_child,
            FailingOverC => failing_over_c,
            BufferFirstOverC => buffer_first_over_c,
            BufferFirstOverSmp => buffer_first_over_smp,
            ThreadSafeOverC => thread_safe_over_c,
            ThreadSafeOverArena => thread_safe_over_arena,
            LoggingOverC => logging_over_c,
            // The debug allocator under each record strategy: the address
            // index (over C), in-band headers (over smp, bare or behind a
            // wrapper that forwards smp's live-block capability).
            DebugOverC => debug_over_c,
            DebugOverSmp => debug_over_smp,
            DebugOverThreadSafeSmp => debug_over_thread_safe_smp,
        }
    };
}

/// Declares [`Kind`] from the registry.
macro_rules! declare_kind {
    ($($kind:ident => $name:ident,)*) => {
        /// Which allocator (one per entry of the registry, `for_each_kind!`).
        #[derive(Clone, Copy, Debug)]
        pub enum Kind {
            $(
                #[doc = stringify!($name)]
                $kind,
            )*
        }

        impl Kind {
            /// Every allocator under test.
            pub const ALL: &[Kind] = &[$(Kind::$kind,)*];
        }
    };
}

for_each_kind!(declare_kind);

/// An allocator under test and what it owns.
pub struct Subject {
    pub a: la_allocator,
    /// Allocation may fail for in-range requests (a bounded buffer).
    pub bounded: bool,
    /// `remap` never moves a block (it is `resize` or NULL).
    pub remap_in_place: bool,
    /// The failing allocator's handle, to compare its counters.
    pub failing: Option<*mut la_failing>,
    /// The debug allocator's handle, to read its counters; destroyed (and
    /// its verdict checked) in drop.
    pub debug: Option<*mut la_debug>,
    arena: Option<*mut la_arena>,
    fixed: Option<(Box<la_fixed_buffer>, Vec<u8>)>,
    buffer_first: Option<(Box<MaybeUninit<la_buffer_first>>, Vec<u8>)>,
    thread_safe: Option<*mut la_thread_safe>,
    logging: Option<(*mut la_logging, File)>,
}

impl Subject {
    pub fn new(kind: Kind) -> Subject {
        let mut s = Subject {
            a: la_allocator::NULL,
            bounded: false,
            remap_in_place: false,
            failing: None,
            debug: None,
            arena: None,
            fixed: None,
            buffer_first: None,
            thread_safe: None,
            logging: None,
        };
        match kind {
            Kind::Page => s.a = la_page_allocator(),
            Kind::C => s.a = la_c_allocator(),
            Kind::Smp => s.a = la_smp_allocator(),
            Kind::FixedBuffer | Kind::ThreadSafeFixedBuffer => {
                let mut buf = vec![0u8; FIXED_LEN];
                let mut fb = Box::new(la_fixed_buffer {
                    buffer: ptr::null_mut(),
                    len: 0,
                    end_index: 0,
                });
                // SAFETY: fb is writable; buf lives as long as the subject.
                unsafe { la_fixed_buffer_init(&mut *fb, buf.as_mut_ptr().cast(), buf.len()) };
                s.a = match kind {
                    Kind::FixedBuffer => la_fixed_buffer_allocator(&mut *fb),
                    _ => la_fixed_buffer_thread_safe_allocator(&mut *fb),
                };
                s.bounded = true;
                s.remap_in_place = true;
                s.fixed = Some((fb, buf));
            }
            Kind::ArenaOverC | Kind::ArenaOverPage | Kind::ArenaOverSmp | Kind::ArenaOverFlaky => {
                let child = match kind {
                    Kind::ArenaOverC => la_c_allocator(),
                    Kind::ArenaOverPage => la_page_allocator(),
                    Kind::ArenaOverFlaky => flaky_allocator(),
                    _ => la_smp_allocator(),
                };
                // A flaky child may refuse the arena's own state: ask again.
                // SAFETY: the child is valid.
                let arena = (0..64)
                    .map(|_| unsafe { la_arena_create(child) })
                    .find(|a| !a.is_null())
                    .expect("arena creation keeps failing");
                s.a = la_arena_allocator(arena);
                s.remap_in_place = true;
                s.bounded = matches!(kind, Kind::ArenaOverFlaky);
                s.arena = Some(arena);
            }
            Kind::BufferFirstOverC | Kind::BufferFirstOverSmp => {
                let fallback = match kind {
                    Kind::BufferFirstOverC => la_c_allocator(),
                    _ => la_smp_allocator(),
                };
                let mut buf = vec![0u8; BUFFER_FIRST_LEN];
                let mut bf = Box::new(MaybeUninit::<la_buffer_first>::uninit());
                // SAFETY: writable state, a buffer that lives as long as the
                // subject, a valid fallback.
                unsafe {
                    la_buffer_first_init(
                        bf.as_mut_ptr(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        fallback,
                    );
                    s.a = la_buffer_first_allocator(bf.as_mut_ptr());
                }
                s.buffer_first = Some((bf, buf));
            }
            Kind::ThreadSafeOverC => {
                let ts = la_thread_safe_create(la_c_allocator());
                assert!(!ts.is_null());
                // A live wrapper, destroyed in drop.
                s.a = la_thread_safe_allocator(ts);
                s.thread_safe = Some(ts);
            }
            Kind::ThreadSafeOverArena => {
                // SAFETY: the page allocator is a valid child.
                let arena = unsafe { la_arena_create(la_page_allocator()) };
                assert!(!arena.is_null());
                let ts = la_thread_safe_create(la_arena_allocator(arena));
                assert!(!ts.is_null());
                // A live wrapper, destroyed (before the arena) in drop.
                s.a = la_thread_safe_allocator(ts);
                s.remap_in_place = true;
                s.arena = Some(arena);
                s.thread_safe = Some(ts);
            }
            Kind::LoggingOverC => {
                let devnull = File::options().write(true).open("/dev/null").unwrap();
                let lg = la_logging_create(la_c_allocator(), devnull.as_raw_fd(), 0);
                assert!(!lg.is_null());
                // A live wrapper, destroyed in drop.
                s.a = la_logging_allocator(lg);
                s.logging = Some((lg, devnull));
            }
            Kind::DebugOverC | Kind::DebugOverSmp | Kind::DebugOverThreadSafeSmp => {
                let backing = match kind {
                    Kind::DebugOverC => la_c_allocator(),
                    Kind::DebugOverSmp => la_smp_allocator(),
                    _ => {
                        let ts = la_thread_safe_create(la_smp_allocator());
                        assert!(!ts.is_null());
                        // A live wrapper, destroyed after the debug
                        // allocator in drop.
                        s.thread_safe = Some(ts);
                        la_thread_safe_allocator(ts)
                    }
                };
                // Misuse is counted (and checked by the test), not fatal.
                let cfg = la_debug_config {
                    on_error: la_debug_on_error::LA_DEBUG_CONTINUE,
                    ..la_debug_config::default()
                };
                // SAFETY: a valid backing and config.
                let d = unsafe { la_debug_create(backing, &cfg) };
                assert!(!d.is_null());
                // SAFETY: a live instance, destroyed in drop.
                s.a = unsafe { la_debug_allocator(d) };
                s.remap_in_place = true;
                s.debug = Some(d);
            }
            Kind::FailingOverC => {
                // SAFETY: the child is valid.
                let f = unsafe { la_failing_create(la_c_allocator(), usize::MAX, usize::MAX) };
                assert!(!f.is_null());
                s.a = la_failing_allocator(f);
                s.failing = Some(f);
            }
        }
        s
    }
}

impl Drop for Subject {
    fn drop(&mut self) {
        // SAFETY: the handles are live and no longer used.
        unsafe {
            // The debug allocator first: its backing may be a wrapper below.
            if let Some(d) = self.debug {
                let verdict = la_debug_destroy(d);
                if !std::thread::panicking() {
                    assert_eq!(verdict, la_check::LA_CHECK_OK, "la_debug_destroy");
                }
            }
            if let Some(ts) = self.thread_safe {
                la_thread_safe_destroy(ts);
            }
            if let Some((lg, _)) = &self.logging {
                la_logging_destroy(*lg);
            }
            if let Some(arena) = self.arena {
                la_arena_destroy(arena);
            }
            if let Some(f) = self.failing {
                la_failing_destroy(f);
            }
        }
    }
}

#[test]
fn every_kind_is_made_used_and_dropped() {
    for &kind in Kind::ALL {
        let s = Subject::new(kind);
        // SAFETY: a live allocator; the block is freed with its length and
        // alignment.
        unsafe {
            let p = la_raw_alloc(s.a, 64, 4, 0);
            // A bounded allocator (a flaky child) may refuse.
            assert!(!p.is_null() || s.bounded, "{kind:?}");
            if !p.is_null() {
                la_raw_free(s.a, p, 64, 4, 0);
            }
        }
    }
}

/// A thread-safe child that fails now and then: about one alloc, resize or
/// remap in four returns NULL / false (decided by a shared counter); the
/// rest go to the C allocator. Lets the tests reach every out-of-memory path
/// of an allocator built on a child, also from several threads.
pub fn flaky_allocator() -> la_allocator {
    static VTABLE: la_vtable = la_vtable {
        alloc: Some(flaky_alloc),
        resize: Some(flaky_resize),
        remap: Some(flaky_remap),
        free: Some(flaky_free),
    };
    la_allocator {
        ptr: ptr::null_mut(),
        vtable: &VTABLE,
    }
}

/// Whether this call should fail (one in four, scrambled).
fn flaky_fails() -> bool {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    (n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60) < 4
}

/// `alloc` of [`flaky_allocator`]: fails one call in four, else the C allocator.
///
/// # Safety
/// None beyond the vtable contract: the arguments go to `la_raw_alloc`.
unsafe extern "C" fn flaky_alloc(
    _ctx: *mut c_void,
    len: usize,
    alignment: la_alignment,
    ret_addr: usize,
) -> *mut c_void {
    if flaky_fails() {
        return ptr::null_mut();
    }
    // SAFETY: forwarded vtable call to a valid allocator.
    unsafe { la_raw_alloc(la_c_allocator(), len, alignment, ret_addr) }
}

/// `resize` of [`flaky_allocator`].
///
/// # Safety
/// `memory` is a live block of this allocator (so of the C allocator) with
/// `len` and `alignment` as last granted.
unsafe extern "C" fn flaky_resize(
    _ctx: *mut c_void,
    memory: *mut c_void,
    len: usize,
    alignment: la_alignment,
    new_len: usize,
    ret_addr: usize,
) -> bool {
    // SAFETY: forwarded vtable call; the block is the C allocator's.
    !flaky_fails()
        && unsafe { la_raw_resize(la_c_allocator(), memory, len, alignment, new_len, ret_addr) }
}

/// `remap` of [`flaky_allocator`].
///
/// # Safety
/// As for [`flaky_resize`].
unsafe extern "C" fn flaky_remap(
    _ctx: *mut c_void,
    memory: *mut c_void,
    len: usize,
    alignment: la_alignment,
    new_len: usize,
    ret_addr: usize,
) -> *mut c_void {
    if flaky_fails() {
        return ptr::null_mut();
    }
    // SAFETY: forwarded vtable call; the block is the C allocator's.
    unsafe { la_raw_remap(la_c_allocator(), memory, len, alignment, new_len, ret_addr) }
}

/// `free` of [`flaky_allocator`].
///
/// # Safety
/// As for [`flaky_resize`]; the block is dead afterwards.
unsafe extern "C" fn flaky_free(
    _ctx: *mut c_void,
    memory: *mut c_void,
    len: usize,
    alignment: la_alignment,
    ret_addr: usize,
) {
    // SAFETY: forwarded vtable call; the block is the C allocator's.
    unsafe { la_raw_free(la_c_allocator(), memory, len, alignment, ret_addr) }
}
