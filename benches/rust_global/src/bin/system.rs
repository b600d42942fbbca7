//! The benchmark workload with the system allocator (glibc malloc).
#[global_allocator]
static GLOBAL: std::alloc::System = std::alloc::System;

fn main() {
    rust_global_bench::main();
}
