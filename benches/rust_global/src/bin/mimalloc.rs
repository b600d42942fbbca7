//! The benchmark workload with the mimalloc crate.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    rust_global_bench::main();
}
