#!/bin/sh
# A new Rust project depends on liballoc the way the README says
# (`cargo add --path`), sets LibAlloc as its global allocator, puts a
# collection on an Arena, builds and runs. Used by `make rust-crate-test`.
#
# Usage: tests/rust_consumer.sh WORK_DIR   (WORK_DIR is emptied first)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
work=$1
cargo=${CARGO:-cargo}
rm -rf "$work"
mkdir -p "$work"
cd "$work"
"$cargo" new --quiet --vcs none consumer
cd consumer
"$cargo" add --quiet --path "$root"
"$cargo" add --quiet allocator-api2@0.2
cat > src/main.rs <<'RS'
use allocator_api2::vec::Vec as ArenaVec;
use liballoc::{Arena, LibAlloc};
use std::collections::HashMap;

#[global_allocator]
static GLOBAL: LibAlloc = LibAlloc;

fn main() {
    let m: HashMap<u32, String> = (0..10_000).map(|i| (i, i.to_string())).collect();
    let arena = Arena::new();
    let mut v = ArenaVec::new_in(arena.allocator());
    v.extend(m.values().map(|s| s.len()));
    let p = m.get(&7).unwrap().as_ptr();
    // SAFETY: the string's buffer is a live block of the global allocator.
    let usable = unsafe { GLOBAL.usable_size(p) };
    println!("consumer: {} {} {}", m.len(), v.iter().sum::<usize>(), usable >= 1);
}
RS
out=$("$cargo" run --quiet)
test "$out" = "consumer: 10000 38890 true" || { echo "rust_consumer: unexpected output: $out"; exit 1; }
echo "rust_consumer: cargo add --path, #[global_allocator] and an Arena: ok"
