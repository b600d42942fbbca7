//! The OS layer: the only code in the crate that makes system calls or
//! reaches the C library's process state, as mimalloc's `prim.h` is for it.
//!
//! One module per concern:
//!
//! | module | what |
//! |---|---|
//! | [`memory`] | mappings, reservations, protection, decommit, `mremap`, `mincore`; the system-call counters |
//! | [`fd`] | open, read, write, close, pipes; `EINTR` retried in one place |
//! | [`errno`] | the thread's `errno`, read, set and kept unchanged |
//! | [`tls`] | the thread pointer, static TLS slots, thread-exit keys |
//! | [`time`] | monotonic clocks and CPU times |
//! | [`process`] | process and thread ids, signals, cancellation, abort |
//! | [`thread`] | the library's own background threads, sleeping, `fork` handlers |
//! | [`loader`] | the module and symbol of an address, the loaded modules' segments |
//! | [`spawn`] | running a helper program with its output in a pipe |
//! | [`lock`] | the futex lock for allocation paths |
//! | [`write`] | the one allocation-free text writer (`core::fmt::Write`) |
//!
//! The private C pieces they need (static TLS variables, `vfork`) are in
//! `src/sys/c/`.
//!
//! Contract, stated once for every function here:
//! - lengths are byte counts;
//! - nothing here allocates, panics or formats, so it may run inside
//!   `malloc` (the one lock, [`lock::RawLock`], is the caller's to take);
//! - failures are reported as `None` / `false`, never by aborting;
//! - nothing here changes `errno` ([`errno::keep`] puts it back after every
//!   call that could fail), so a caller such as `free` can promise to leave
//!   it alone.
//!
//! The memory functions, and the few others most callers use, are also
//! exported from here.

pub mod errno;
pub mod fd;
pub mod loader;
pub mod lock;
pub mod memory;
/// cbindgen:ignore
pub mod process;
/// cbindgen:ignore
pub mod spawn;
pub mod thread;
pub mod time;
pub mod tls;
pub mod write;

pub use fd::{close, open_append, open_truncate};
pub use memory::*;
pub use process::{disable_cancel, on_signal, process_id, restore_cancel, thread_id};
pub use time::now_ms;
