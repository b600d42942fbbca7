//! The diagnostics runtime: the services a checker needs, kept apart from
//! any one checker (the debug allocator uses it, and the shim's profiler
//! shares its stack capture and maps reader).
//!
//! It sits beside `sys`, below the allocators: nothing here knows an
//! allocator, and nothing here allocates through `malloc` (memory comes
//! from `sys`), so every part may run inside `malloc` under the shim.
//! It reaches the OS only through `sys` (files, the loader, child
//! processes, the lock and the writer its reports are printed with).
//!
//! | file | concept |
//! |---|---|
//! | `trace.rs` | stack capture by frame-pointer walk (no allocation) |
//! | `cfi.rs` | stack capture through code without frame pointers (DWARF call-frame information, rows cached) |
//! | `resume.rs` | memory of where the unwinder went from a frame-pointer walk's stop, checked against the stack |
//! | `depot.rs` | the stack depot: each distinct trace stored once, named by an id |
//! | `symbolize.rs` | report-time symbolization (`dladdr`, `addr2line`) |
//! | `maps.rs` | the `/proc/self/maps` reader |
//! | `scratch.rs` | a private arena for report-time work |
//! | `seqcache.rs` | a lock-free cache of word pairs (the unwinders' memory) |
//! | `report.rs` | report layout, shaped like the sanitizers' |

pub mod cfi;
pub mod depot;
pub mod maps;
pub mod report;
pub mod resume;
pub mod scratch;
pub mod seqcache;
pub mod symbolize;
pub mod trace;
