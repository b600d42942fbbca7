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
//! | debug | `debug/` | opaque handle over a backing allocator: traces, leak and misuse reports |

pub mod arena;
pub mod c;
pub mod debug;
pub mod failing;
pub mod fixed_buffer;
pub mod page;
pub mod smp;
