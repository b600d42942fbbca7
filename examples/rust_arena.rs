//! Collections on liballoc's per-collection allocators (allocator-api2):
//! an arena for a batch of temporaries, a fixed buffer on the stack, and
//! the debug allocator to find a leak.
//!
//! ```sh
//! cargo run --example rust_arena
//! ```

use allocator_api2::vec::Vec;
use hashbrown::{DefaultHashBuilder, HashMap};

use liballoc::{Arena, DebugAllocator, FixedBuffer, ResetMode};

fn main() {
    // An arena: allocation is a pointer bump; reset frees the whole batch.
    let mut arena = Arena::new();
    for batch in 0..3 {
        let mut index: HashMap<u32, Vec<u32, _>, DefaultHashBuilder, _> =
            HashMap::with_hasher_in(DefaultHashBuilder::default(), arena.allocator());
        for i in 0..10_000u32 {
            index
                .entry(i % 100)
                .or_insert_with(|| Vec::new_in(arena.allocator()))
                .push(i + batch);
        }
        println!(
            "batch {batch}: {} keys, arena holds {} KiB",
            index.len(),
            arena.capacity() / 1024
        );
        drop(index);
        // Every block of the batch goes at once; the memory stays for the next.
        arena.reset(ResetMode::RetainCapacity);
    }

    // A fixed buffer: no heap at all.
    let mut stack = [0u8; 4096];
    let fb = FixedBuffer::new(&mut stack);
    let mut squares: Vec<u64, _> = Vec::new_in(fb.allocator());
    squares.extend((0..100u64).map(|i| i * i));
    println!("100 squares in {} bytes of a stack buffer", fb.used());
    drop(squares);

    // The debug allocator: a forgotten vector is reported as a leak (on
    // stderr) when the allocator is finished or dropped.
    let debug = DebugAllocator::new();
    let leaked: Vec<u8, _> = Vec::with_capacity_in(64, debug.allocator());
    std::mem::forget(leaked);
    println!("debug allocator: {:?}", debug.finish());
}
