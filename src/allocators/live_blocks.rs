//! The live-block capability: an allocator that can say exactly whether an
//! address is the start of a live block of its own, and how long that block
//! is, without reading memory that is not its own (LeakSanitizer's
//! `PointsIntoChunk` and `GetUserBegin` hooks). The debug allocator's
//! in-band record strategy needs it (`debug/strategy.rs`).
//!
//! The smp allocator offers it (`smp::live_block_size`). A wrapper whose
//! blocks are its child's forwards its child's capability when calls that
//! reach the child past it are not observable: `thread_safe` does (its lock
//! adds nothing an allocator with the capability needs). `logging` does
//! not: its log would miss those calls, so over it the debug allocator
//! finds records through its index. The C vtable has no room for a
//! capability, so it is asked of an `la_allocator` value: [`owner`]
//! follows forwarding wrappers down to the allocator that owns the blocks.

use core::ptr;

use super::{smp, thread_safe};
use crate::vtable::la_allocator;

/// The allocator that answers live-block queries for a backing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The process-wide smp allocator (`smp::live_block_size`).
    Smp,
}

/// Who answers live-block queries for the blocks of `a`: `a` itself, or the
/// allocator under the wrappers that forward the capability; `None` when
/// no one does.
///
/// # Safety
/// `a` is a valid allocator (a wrapper's handle is live).
pub unsafe fn owner(a: &la_allocator) -> Option<Owner> {
    let mut a = *a;
    // Wrappers nest a few levels at most; the bound keeps a cycle (which
    // a valid allocator cannot have) from looping.
    for _ in 0..16 {
        if ptr::eq(a.vtable, smp::la_smp_allocator().vtable) {
            return Some(Owner::Smp);
        }
        // SAFETY: caller's promise: a live handle.
        a = unsafe { thread_safe::forwarded_child(&a) }?;
    }
    None
}
