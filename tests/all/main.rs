//! The integration tests, one binary: each module is a group of tests
//! driving the library through its public (C ABI) functions.
//!
//! The library is the crate `liballoc`; the standard
//! library's allocation module is `std::alloc`.

// The library's rule holds here too: every `unsafe {}` argues its case.
#![warn(clippy::undocumented_unsafe_blocks)]

#[macro_use]
mod allocators;
mod concurrency;
mod model;
mod pool;
