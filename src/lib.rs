//! liballoc: Zig's `std.mem.Allocator` interface, implemented in Rust and
//! exported through a C ABI.
//!
//! An allocator is an `la_allocator` `{ptr, vtable}` pair; the vtable has four
//! entry points (`alloc`, `resize`, `remap`, `free`) whose contract is written
//! once in [`vtable`]. The allocators live in [`allocators`], one file each;
//! the OS layer in [`sys`]; the typed C helpers (`la_create`, `la_realloc`,
//! ...) are C code in `src/c/helpers.c`, compiled in by `build.rs`.
//!
//! API conventions (mirrored in README.md and the header):
//! - every exported symbol starts with `la_` (`LA_` for macros/constants);
//! - a function belongs to the type its name starts with and takes it first;
//! - failure is NULL / false; bad input (NULL handles, impossible sizes or
//!   alignments) is failure, never a crash;
//! - allocators with growing state are opaque handles (`_create`/`_destroy`),
//!   small fixed-layout state lives in caller storage (`_init`).
//!
//! From Rust: [`LibAlloc`] is the smp allocator as a `#[global_allocator]`;
//! [`collections`] has safe owners of the arena, pool, fixed-buffer,
//! buffer-first and debug allocators whose handles implement
//! `allocator-api2`'s `Allocator`, for `allocator_api2::vec::Vec` and
//! `hashbrown` collections.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod alignment;
pub mod allocators;
/// cbindgen:ignore
pub mod collections;
pub mod diag;
/// cbindgen:ignore
pub mod global;
/// cbindgen:ignore
#[cfg(feature = "preload")]
pub mod preload;
pub mod profile;
pub mod sys;
pub mod version;
pub mod vtable;

pub use collections::{
    AllocatorRef, Arena, BufferFirst, DebugAllocator, FixedBuffer, Pool, PoolRef, ResetMode,
};
pub use global::LibAlloc;
pub use vtable::{ChildAllocator, RawAllocator, la_alignment, la_allocator, la_vtable};
