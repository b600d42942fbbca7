//! liballoc's smp allocator as the global allocator of a Rust program.
//!
//! ```sh
//! cargo run --release --example rust_global
//! ```

use std::collections::{BTreeMap, HashMap};
use std::thread;

use liballoc::LibAlloc;

#[global_allocator]
static GLOBAL: LibAlloc = LibAlloc;

fn main() {
    // Every Box, Vec, String and map below comes from liballoc.
    let totals: Vec<usize> = thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                s.spawn(move || {
                    let mut words: HashMap<String, usize> = HashMap::new();
                    for i in 0..100_000 {
                        *words
                            .entry(format!("word{}", (i * 7 + t) % 5000))
                            .or_default() += 1;
                    }
                    let sorted: BTreeMap<_, _> = words.into_iter().collect();
                    sorted.values().sum::<usize>()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    println!(
        "counted {} words on {} threads",
        totals.iter().sum::<usize>(),
        totals.len()
    );

    let v: Vec<u64> = (0..1_000_000).collect();
    // SAFETY: `v`'s buffer is a live block of the global allocator.
    let usable = unsafe { GLOBAL.usable_size(v.as_ptr().cast()) };
    println!(
        "a vector of {} bytes sits in a block of {usable} bytes",
        v.len() * 8
    );
}
