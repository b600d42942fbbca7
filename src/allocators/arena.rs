//! (placeholder: implemented with issue 2's allocators)
//!
//! The reset-mode enum is declared here ahead of the arena itself, exactly as
//! the API fixes it, because the memory pool shares it.

/// How `la_arena_reset` (and `la_pool_reset`) treat the memory they hold.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum la_arena_reset_mode {
    /// Give every block back to the child.
    LA_ARENA_FREE_ALL,
    /// Keep all the memory for reuse.
    LA_ARENA_RETAIN_CAPACITY,
    /// Keep at most `limit` bytes for reuse, give the rest back.
    LA_ARENA_RETAIN_WITH_LIMIT,
}
