//! The benchmark workload with liballoc's smp allocator.
#[global_allocator]
static GLOBAL: liballoc::LibAlloc = liballoc::LibAlloc;

fn main() {
    rust_global_bench::main();
}
