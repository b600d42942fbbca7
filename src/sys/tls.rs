//! Static TLS slots: C `_Thread_local` variables with the initial-exec model
//! (`src/c/*_tls.c`), reached from Rust without `__tls_get_addr` (which may
//! allocate, and costs a call on every access).
//!
//! Such a variable lives at the same offset from the thread pointer in every
//! thread. A [`StaticSlot`] learns that offset once, from a C function that
//! returns the variable's address in the calling thread, and from then on
//! finds the calling thread's copy with one load of `%fs:0` and one add.
//! x86-64 Linux only; elsewhere callers use `thread_local!`.

use core::ffi::c_void;
use core::sync::atomic::{AtomicIsize, Ordering};

/// The calling thread's pointer (the TCB, which on x86-64 Linux points to
/// itself at `%fs:0`).
#[inline(always)]
pub fn thread_pointer() -> isize {
    let tp: isize;
    // SAFETY: on x86-64 Linux %fs:0 holds the thread pointer (the TCB
    // points to itself); reading it has no side effects.
    unsafe {
        core::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly, preserves_flags, pure));
    }
    tp
}

/// One initial-exec TLS variable defined in C.
pub struct StaticSlot {
    /// Offset of the variable from the thread pointer (0 = not known yet:
    /// a static TLS variable is never at offset 0, where the TCB is).
    offset: AtomicIsize,
    /// Returns the variable's address in the calling thread.
    address: unsafe extern "C" fn() -> *mut c_void,
}

impl StaticSlot {
    /// The slot of the variable whose address `address` returns (a C
    /// function with no side effects, callable from any thread).
    pub const fn new(address: unsafe extern "C" fn() -> *mut c_void) -> Self {
        StaticSlot {
            offset: AtomicIsize::new(0),
            address,
        }
    }

    /// The calling thread's copy of the variable.
    #[inline(always)]
    pub fn get(&self) -> *mut c_void {
        let mut off = self.offset.load(Ordering::Relaxed);
        if off == 0 {
            off = self.learn();
        }
        thread_pointer().wrapping_add(off) as *mut c_void
    }

    #[cold]
    fn learn(&self) -> isize {
        // SAFETY: the C function returns the calling thread's address of
        // the variable (see `new`).
        let slot = unsafe { (self.address)() } as isize;
        let off = slot - thread_pointer();
        self.offset.store(off, Ordering::Relaxed);
        off
    }
}
