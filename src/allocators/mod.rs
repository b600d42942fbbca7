//! The allocators, one file (or folder) each, all behind the `la_vtable`.
//!
//! | allocator | file | state |
//! |---|---|---|
//! | page | `page.rs` | none: every block is its own mapping |
//! | C (libc) | `c.rs` | none: malloc/posix_memalign/realloc |
//! | fixed buffer | `fixed_buffer.rs` | caller storage (`la_fixed_buffer`) |
//! | arena | `arena.rs` | opaque handle over a child |
//! | failing | `failing.rs` | opaque handle over a child, plus the always-failing one |
//! | smp | `smp/` | process-wide, thread-caching |
//! | buffer-first | `buffer_first.rs` | caller storage (`la_buffer_first`) over a fallback |
//! | memory pool | `pool.rs` | opaque handle over a child: fixed-size items |
//! | thread-safe | `thread_safe.rs` | opaque handle: a child behind a fork-safe lock |
//! | logging | `logging.rs` | opaque handle: a child, every call written to an fd |
//! | debug | `debug/` | opaque handle over a backing allocator: traces, leak and misuse reports |
//!
//! `live_blocks.rs` is the capability the debug allocator's in-band record
//! strategy asks of its backing (smp offers it, `thread_safe` forwards it).
//! `check_all.rs` (`la_check_all_allocation_failures`) runs a test function
//! over a failing allocator over a debug allocator, once per allocation.

pub mod arena;
pub mod buffer_first;
pub mod c;
pub mod check_all;
pub mod debug;
pub mod failing;
pub mod fixed_buffer;
pub mod handle;
pub mod live_blocks;
pub mod logging;
pub mod page;
pub mod pool;
pub mod smp;
pub mod thread_safe;
