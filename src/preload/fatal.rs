//! Fatal misuse reports: `liballoc: fatal: <what>: <function>(<pointer>)`
//! written to stderr with `write(2)`, then `abort()`.
//!
//! Called when a program hands the shim a pointer it did not allocate (a
//! stack, global or wild address, or one inside its heap where no block was
//! handed out), an interior or misaligned pointer, or a block that is
//! already free, or, for C++ sized `operator delete`, a size larger than
//! the block. Continuing would corrupt the heap, so the
//! process stops at the faulty call, where a debugger or core dump shows the
//! culprit. Allocation-free and lock-free, so it works in any state.

use crate::sys::write::Writer;

/// What was wrong with a pointer given to the shim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misuse {
    /// The block was already freed.
    DoubleFree,
    /// Inside this allocator's memory, where no block was handed out.
    Unallocated,
    /// Not a block of this allocator (stack, global, foreign or wild).
    NotOurs,
    /// Points inside a block of this allocator, not at its start.
    Interior,
    /// Not aligned like any block this allocator returns.
    Misaligned,
}

impl Misuse {
    fn text(self) -> &'static str {
        match self {
            Misuse::DoubleFree => "double free (the block is already free)",
            Misuse::Unallocated => "invalid pointer (no allocated block starts here)",
            Misuse::NotOurs => "invalid pointer (not allocated by liballoc)",
            Misuse::Interior => "invalid pointer (inside a block, not its start)",
            Misuse::Misaligned => "invalid pointer (misaligned)",
        }
    }
}

/// Reports `misuse` of pointer `ptr` in function `func` and aborts.
#[cold]
#[inline(never)]
pub fn misuse(func: &str, misuse: Misuse, ptr: *const u8) -> ! {
    {
        let mut w = Writer::fd(2);
        w.str("liballoc: fatal: ")
            .str(misuse.text())
            .str(": ")
            .str(func)
            .str("(")
            .hex(ptr as usize)
            .str(")\n");
    }
    abort()
}

/// Reports a sized free (C++ sized `operator delete`) of block `ptr`
/// given `size` bytes, more than the block's `block_size`, and aborts.
#[cold]
#[inline(never)]
pub fn wrong_size(func: &str, ptr: *const u8, size: usize, block_size: usize) -> ! {
    {
        let mut w = Writer::fd(2);
        w.str("liballoc: fatal: invalid size (")
            .u64(size as u64)
            .str(" bytes given, the block holds at most ")
            .u64(block_size as u64)
            .str("): ")
            .str(func)
            .str("(")
            .hex(ptr as usize)
            .str(")\n");
    }
    abort()
}

/// Reports a fatal condition described by `msg` and aborts.
#[cold]
#[inline(never)]
pub fn message(msg: &str) -> ! {
    {
        let mut w = Writer::fd(2);
        w.str("liballoc: fatal: ").str(msg).str("\n");
    }
    abort()
}

/// `abort()`: raises SIGABRT (glibc's abort takes no stdio lock).
#[cold]
pub fn abort() -> ! {
    crate::sys::process::abort()
}
