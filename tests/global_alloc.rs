//! liballoc as the global allocator of a Rust program: every allocation of
//! this test binary (the harness's included) goes through `LibAlloc`.
//! A collection-heavy workload runs on several threads, with blocks dropped
//! by threads other than the ones that made them.

use std::alloc::{GlobalAlloc, Layout};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::mpsc;
use std::thread;

use liballoc::LibAlloc;
use liballoc::allocators::smp::{self, PtrCheck};

#[global_allocator]
static GLOBAL: LibAlloc = LibAlloc;

#[test]
fn blocks_come_from_the_smp_allocator() {
    let b = Box::new([7u8; 100]);
    let v: Vec<u64> = (0..100_000).collect();
    for p in [b.as_ptr(), v.as_ptr().cast::<u8>()] {
        assert_eq!(smp::check(p), PtrCheck::Live);
    }
    // SAFETY: a live block of the global allocator.
    assert!(unsafe { GLOBAL.usable_size(b.as_ptr()) } >= 100);
}

#[test]
fn alignment_zeroing_and_realloc_keep_their_promises() {
    for align_log2 in 0..=22 {
        let align = 1usize << align_log2;
        for size in [1usize, 8, 24, 100, 4096, 70_000, 3 << 20] {
            let step = size / 4096 + 1;
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: a non-zero layout; each block is freed with it.
            unsafe {
                let z = GLOBAL.alloc_zeroed(layout);
                assert!(!z.is_null());
                assert_eq!(z as usize % align, 0);
                assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                for i in (0..size).step_by(step) {
                    *z.add(i) = i as u8;
                }
                // Grow then shrink, keeping contents.
                let g = GLOBAL.realloc(z, layout, size * 3);
                assert!(!g.is_null());
                assert_eq!(g as usize % align, 0);
                for i in (0..size).step_by(step) {
                    assert_eq!(*g.add(i), i as u8);
                }
                let grown = Layout::from_size_align(size * 3, align).unwrap();
                let s = GLOBAL.realloc(g, grown, size.div_ceil(2));
                assert!(!s.is_null());
                assert_eq!(s as usize % align, 0);
                for i in (0..size.div_ceil(2)).step_by(step) {
                    assert_eq!(*s.add(i), i as u8);
                }
                GLOBAL.dealloc(s, Layout::from_size_align(size.div_ceil(2), align).unwrap());
            }
        }
    }
}

/// One thread's share of the workload; returns a checksum.
fn workload(seed: u64, rounds: usize) -> u64 {
    let mut sum = 0u64;
    for r in 0..rounds {
        let n = 2_000 + (seed as usize * 131 + r * 977) % 6_000;
        let mut h: HashMap<u64, String> = HashMap::new();
        let mut b: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut q: VecDeque<Box<[u8]>> = VecDeque::new();
        for i in 0..n as u64 {
            let k = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed;
            h.insert(k, format!("value-{k}-{i}"));
            b.entry(format!("{:x}", k % 997)).or_default().push(i);
            q.push_back(vec![i as u8; (i % 300) as usize].into_boxed_slice());
            if q.len() > 64 {
                q.pop_front();
            }
        }
        let mut s = String::new();
        for (k, v) in &b {
            s.push_str(k);
            sum = sum.wrapping_add(v.iter().sum::<u64>());
        }
        h.retain(|k, _| k % 3 != 0);
        sum = sum.wrapping_add(h.len() as u64 + s.len() as u64);
        for v in h.values() {
            sum = sum.wrapping_add(v.len() as u64);
        }
    }
    sum
}

#[test]
fn collection_workload_on_several_threads_matches_one_thread() {
    let seeds: Vec<u64> = (1..=6).collect();
    let expected: Vec<u64> = seeds.iter().map(|&s| workload(s, 3)).collect();
    let got: Vec<u64> = thread::scope(|sc| {
        let hs: Vec<_> = seeds
            .iter()
            .map(|&s| sc.spawn(move || workload(s, 3)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(got, expected);
}

#[test]
fn blocks_dropped_by_other_threads() {
    const PRODUCERS: usize = 4;
    const BATCHES: usize = 200;
    let (tx, rx) = mpsc::sync_channel::<(Vec<String>, HashMap<u32, Vec<u8>>)>(16);
    let consumer = thread::spawn(move || {
        let mut n = 0usize;
        for (strings, map) in rx {
            for (i, s) in strings.iter().enumerate() {
                assert_eq!(s, &format!("s{i}"));
            }
            for (k, v) in &map {
                assert_eq!(v.len(), *k as usize % 100);
            }
            n += strings.len() + map.len();
            // Dropped here: freed by this thread, made by a producer.
        }
        n
    });
    thread::scope(|sc| {
        for _ in 0..PRODUCERS {
            let tx = tx.clone();
            sc.spawn(move || {
                for _ in 0..BATCHES {
                    let strings: Vec<String> = (0..50).map(|i| format!("s{i}")).collect();
                    let map: HashMap<u32, Vec<u8>> =
                        (0..50u32).map(|k| (k, vec![1; k as usize % 100])).collect();
                    tx.send((strings, map)).unwrap();
                }
            });
        }
    });
    drop(tx);
    assert_eq!(consumer.join().unwrap(), PRODUCERS * BATCHES * 100);
}

#[test]
fn short_lived_threads_leave_their_blocks_to_others() {
    let mut kept = Vec::new();
    for t in 0..32u32 {
        let v = thread::spawn(move || {
            let mut v: Vec<Vec<u32>> = Vec::new();
            for i in 0..500 {
                v.push(vec![t; i % 40 + 1]);
            }
            v
        })
        .join()
        .unwrap();
        kept.push(v);
    }
    for (t, v) in kept.iter().enumerate() {
        assert!(v.iter().all(|x| x.iter().all(|&y| y == t as u32)));
    }
    drop(kept);
    GLOBAL.collect();
}
