//! The C++ `operator delete` family (every variant: plain, array, sized,
//! aligned, nothrow), exported under its Itanium-ABI mangled names, and the
//! allocation entry `la_preload_cxx_alloc` that the `operator new` family
//! in `cxx_new.c` calls.
//!
//! Why `operator new` is C and `operator delete` is Rust: a failing
//! `operator new` must throw `std::bad_alloc`, and an exception cannot
//! unwind through a Rust frame of a `panic = "abort"` build (the process
//! aborts with "panic in a function that cannot unwind"). mimalloc's C
//! override calls the installed `std::new_handler` and, when there is none,
//! prints an error and aborts, because C cannot throw. The shim does one
//! better: `cxx_new.c`, compiled with `-fexceptions`, calls the new_handler
//! loop and then libstdc++'s own `std::__throw_bad_alloc()` (both weak
//! references, so a C program needs no libstdc++); only when no C++ runtime
//! is loaded does it report `liballoc: fatal: out of memory in operator new`
//! and abort. `operator delete` never fails, so it stays in Rust.
//!
//! Sized and aligned deletes are checked: in the debug mode the size and
//! alignment must be those the block was requested with (a mismatch is
//! reported like other misuse); otherwise a size larger than the block is
//! fatal (one comparison: the smp allocator knows the block's size).

use core::ffi::c_void;

use super::MIN_ALIGN_LOG2;

/// Allocation for `operator new`: `size` bytes (0 gives a unique block)
/// aligned to `align` bytes (a power of two; 0 means the default 16).
/// Returns NULL on failure (an alignment that is not a power of two fails).
#[unsafe(no_mangle)]
pub extern "C" fn la_preload_cxx_alloc(size: usize, align: usize) -> *mut c_void {
    if align == 0 {
        return super::alloc(size, MIN_ALIGN_LOG2).cast();
    }
    if !align.is_power_of_two() {
        return core::ptr::null_mut();
    }
    super::alloc_aligned(size, align).cast()
}

/// Reports that `operator new` failed with no way to throw, and aborts.
#[unsafe(no_mangle)]
pub extern "C" fn la_preload_cxx_oom(size: usize) -> ! {
    let mut w = crate::sys::write::Writer::fd(2);
    w.str("liballoc: fatal: out of memory in operator new (")
        .u64(size as u64)
        .str(" bytes) and no C++ runtime to throw std::bad_alloc\n");
    w.flush();
    super::fatal::abort()
}

macro_rules! delete {
    ($($name:literal => $rust:ident($($arg:ident: $ty:ty),*) => $size:expr, $align:expr;)*) => {$(
        /// An `operator delete` variant (see the module doc).
        ///
        /// # Safety
        /// `p` is NULL or a live block of this allocator.
        #[unsafe(export_name = $name)]
        pub unsafe extern "C" fn $rust(p: *mut c_void $(, $arg: $ty)*) {
            $(let _ = $arg;)*
            // SAFETY: caller's promise, checked by validate as far as it can.
            unsafe { super::free_shaped(p.cast(), $size, $align, "operator delete") }
        }
    )*};
}

delete! {
    "_ZdlPv" => delete() => None, 0;
    "_ZdaPv" => delete_array() => None, 0;
    "_ZdlPvm" => delete_sized(size: usize) => Some(size), 0;
    "_ZdaPvm" => delete_array_sized(size: usize) => Some(size), 0;
    "_ZdlPvRKSt9nothrow_t" => delete_nothrow(nt: *const c_void) => None, 0;
    "_ZdaPvRKSt9nothrow_t" => delete_array_nothrow(nt: *const c_void) => None, 0;
    "_ZdlPvSt11align_val_t" => delete_aligned(align: usize) => None, align;
    "_ZdaPvSt11align_val_t" => delete_array_aligned(align: usize) => None, align;
    "_ZdlPvmSt11align_val_t" => delete_sized_aligned(size: usize, align: usize) => Some(size), align;
    "_ZdaPvmSt11align_val_t" => delete_array_sized_aligned(size: usize, align: usize) => Some(size), align;
    "_ZdlPvSt11align_val_tRKSt9nothrow_t" => delete_aligned_nothrow(align: usize, nt: *const c_void) => None, align;
    "_ZdaPvSt11align_val_tRKSt9nothrow_t" => delete_array_aligned_nothrow(align: usize, nt: *const c_void) => None, align;
}
