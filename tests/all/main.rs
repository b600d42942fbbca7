//! The integration tests, one binary: each module is a group of tests
//! driving the library through its public (C ABI) functions.
//!
//! Inside this crate's tests `alloc::` is liballoc itself; the standard
//! library's allocation module is `std::alloc`.

mod allocators;
mod concurrency;
mod model;
