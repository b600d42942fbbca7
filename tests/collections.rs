//! Model tests of the `allocator-api2` allocators: the same random
//! operations on `allocator_api2::vec::Vec` / `hashbrown::HashMap` over
//! each liballoc allocator and on the standard collections over the
//! standard allocator must give the same contents at every step.

use std::collections::HashMap as StdHashMap;
use std::os::fd::AsRawFd;

use allocator_api2::alloc::{Allocator, Layout};
use allocator_api2::boxed::Box as ABox;
use allocator_api2::vec::Vec as AVec;
use hashbrown::DefaultHashBuilder;
use hashbrown::HashMap as HbMap;

use liballoc::allocators::debug::{la_check, la_debug_config};
use liballoc::{Arena, BufferFirst, DebugAllocator, FixedBuffer, LibAlloc, Pool, ResetMode};

/// xorshift64*: a small deterministic generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Random Vec operations on `a`, checked against `std::vec::Vec`; a vector
/// of byte strings on `a` exercises many live blocks of mixed sizes.
fn vec_model<A: Allocator + Clone>(a: A, seed: u64, ops: usize) {
    let mut rng = Rng(seed | 1);
    let mut v: AVec<u64, A> = AVec::new_in(a.clone());
    let mut m: Vec<u64> = Vec::new();
    let mut sv: AVec<AVec<u8, A>, A> = AVec::new_in(a.clone());
    let mut sm: Vec<Vec<u8>> = Vec::new();
    for _ in 0..ops {
        match rng.below(10) {
            0..=2 => {
                let x = rng.next();
                v.push(x);
                m.push(x);
            }
            3 => assert_eq!(v.pop(), m.pop()),
            4 => {
                let n = rng.below(200);
                let base = rng.next();
                v.extend((0..n).map(|i| base ^ i));
                m.extend((0..n).map(|i| base ^ i));
            }
            5 => {
                let n = rng.below(m.len() as u64 + 1) as usize;
                v.truncate(n);
                m.truncate(n);
                if rng.below(2) == 0 {
                    v.shrink_to_fit();
                }
            }
            6 => {
                let i = rng.below(m.len() as u64 + 1) as usize;
                let x = rng.next();
                v.insert(i, x);
                m.insert(i, x);
            }
            7 if !m.is_empty() => {
                let i = rng.below(m.len() as u64) as usize;
                assert_eq!(v.remove(i), m.remove(i));
            }
            8 => {
                let len = rng.below(300) as usize;
                let b = rng.next() as u8;
                let mut s = AVec::with_capacity_in(len, a.clone());
                s.resize(len, b);
                sv.push(s);
                sm.push(vec![b; len]);
            }
            _ if !sm.is_empty() => {
                let i = rng.below(sm.len() as u64) as usize;
                let extra = rng.below(100) as usize;
                sv[i].extend(std::iter::repeat_n(7u8, extra));
                sm[i].extend(std::iter::repeat_n(7u8, extra));
                if rng.below(3) == 0 {
                    sv.swap_remove(i);
                    sm.swap_remove(i);
                }
            }
            _ => {}
        }
        assert_eq!(&v[..], &m[..]);
    }
    assert_eq!(sv.len(), sm.len());
    for (x, y) in sv.iter().zip(&sm) {
        assert_eq!(&x[..], &y[..]);
    }
}

/// Random map operations on `a`, checked against `std::collections::HashMap`.
fn map_model<A: Allocator + Clone>(a: A, seed: u64, ops: usize) {
    let mut rng = Rng(seed | 1);
    let mut h: HbMap<u64, AVec<u8, A>, DefaultHashBuilder, A> =
        HbMap::with_hasher_in(DefaultHashBuilder::default(), a.clone());
    let mut m: StdHashMap<u64, Vec<u8>> = StdHashMap::new();
    for step in 0..ops {
        let k = rng.below(512);
        match rng.below(6) {
            0..=2 => {
                let len = rng.below(64) as usize;
                let mut v = AVec::with_capacity_in(len, a.clone());
                v.resize(len, k as u8);
                let old = h.insert(k, v);
                let old_m = m.insert(k, vec![k as u8; len]);
                assert_eq!(old.map(|v| v.to_vec()), old_m);
            }
            3 => assert_eq!(h.remove(&k).map(|v| v.to_vec()), m.remove(&k)),
            4 => assert_eq!(h.get(&k).map(|v| &v[..]), m.get(&k).map(|v| &v[..])),
            _ => {
                if rng.below(8) == 0 {
                    h.retain(|k, _| k % 5 != 0);
                    m.retain(|k, _| k % 5 != 0);
                    h.shrink_to_fit();
                }
            }
        }
        if step % 64 == 0 {
            assert_eq!(h.len(), m.len());
            for (k, v) in &m {
                assert_eq!(&h[k][..], &v[..]);
            }
        }
    }
    assert_eq!(h.len(), m.len());
}

const OPS: usize = 3000;

#[test]
fn smp() {
    for seed in 1..=4 {
        vec_model(LibAlloc, seed, OPS);
        map_model(LibAlloc, seed, OPS);
    }
}

#[test]
fn arena() {
    for seed in 1..=4 {
        let mut arena = Arena::new();
        vec_model(arena.allocator(), seed, OPS);
        map_model(arena.allocator(), seed, OPS);
        assert!(arena.capacity() > 0);
        assert!(arena.reset(ResetMode::RetainCapacity));
        vec_model(arena.allocator(), seed + 100, OPS);
    }
}

#[test]
fn arena_shared_by_threads() {
    let arena = Arena::new();
    std::thread::scope(|sc| {
        for seed in 1..=4 {
            let arena = &arena;
            sc.spawn(move || vec_model(arena.allocator(), seed, OPS));
        }
    });
}

#[test]
fn fixed_buffer() {
    let mut buf = vec![0u8; 64 << 20];
    for seed in 1..=2 {
        let mut fb = FixedBuffer::new(&mut buf);
        vec_model(fb.allocator(), seed, OPS);
        fb.reset();
        assert_eq!(fb.used(), 0);
        map_model(fb.allocator(), seed, OPS);
        assert!(fb.used() > 0);
    }
}

#[test]
fn fixed_buffer_runs_out_cleanly() {
    let mut buf = [0u8; 1024];
    let fb = FixedBuffer::new(&mut buf);
    let mut v: AVec<u8, _> = AVec::new_in(fb.allocator());
    assert!(v.try_reserve(512).is_ok());
    assert!(v.try_reserve(4096).is_err());
}

#[test]
fn buffer_first() {
    for seed in 1..=4 {
        let mut buf = [0u8; 16 << 10];
        let bf = BufferFirst::new(&mut buf);
        let small: AVec<u8, _> = AVec::with_capacity_in(100, bf.allocator());
        assert!(bf.owns(small.as_ptr()));
        vec_model(bf.allocator(), seed, OPS);
        map_model(bf.allocator(), seed, OPS);
        let big: AVec<u8, _> = AVec::with_capacity_in(1 << 20, bf.allocator());
        assert!(!bf.owns(big.as_ptr()));
        assert!(bf.used() > 0);
    }
}

#[test]
fn debug() {
    for seed in 1..=2 {
        let d = DebugAllocator::new();
        vec_model(d.allocator(), seed, OPS);
        map_model(d.allocator(), seed, OPS);
        assert_eq!(d.stats().live_allocations, 0);
        assert_eq!(d.finish(), la_check::LA_CHECK_OK);
    }
}

#[test]
fn debug_reports_a_leak() {
    let null = std::fs::File::create("/dev/null").unwrap();
    let mut cfg = la_debug_config {
        report_fd: null.as_raw_fd(),
        ..la_debug_config::default()
    };
    cfg.stack_trace_frames = 0;
    let d = DebugAllocator::with_config(&cfg);
    let v: AVec<u64, _> = AVec::with_capacity_in(10, d.allocator());
    std::mem::forget(v);
    assert_eq!(d.stats().live_allocations, 1);
    assert_eq!(d.finish(), la_check::LA_CHECK_LEAK);
}

#[test]
fn pool_boxes_and_fixed_capacity_vecs() {
    #[derive(Debug, PartialEq, Clone)]
    struct Node {
        key: u64,
        payload: [u64; 5],
    }
    let mut pool = Pool::for_type::<Node>();
    let mut rng = Rng(99);
    for _round in 0..3 {
        let mut boxes: Vec<ABox<Node, _>> = Vec::new();
        let mut model: Vec<Node> = Vec::new();
        for _ in 0..5000 {
            if rng.below(3) != 0 || model.is_empty() {
                let k = rng.next();
                let n = Node {
                    key: k,
                    payload: [k; 5],
                };
                boxes.push(ABox::new_in(n.clone(), pool.allocator()));
                model.push(n);
            } else {
                let i = rng.below(model.len() as u64) as usize;
                assert_eq!(*boxes.swap_remove(i), model.swap_remove(i));
            }
        }
        for (b, n) in boxes.iter().zip(&model) {
            assert_eq!(**b, *n);
        }
        // A vector fits an item while its capacity does.
        let per_item = pool.item_layout().size() / 8;
        let mut v: AVec<u64, _> = AVec::with_capacity_in(per_item, pool.allocator());
        v.extend(0..per_item as u64);
        assert_eq!(v.iter().sum::<u64>(), (0..per_item as u64).sum());
        assert!(v.try_reserve(per_item * 2).is_err());
        drop(v);
        drop(boxes);
        assert!(pool.capacity() > 0);
        assert!(pool.reset(ResetMode::RetainCapacity));
    }
    // Layouts larger than an item fail rather than overrun it.
    assert!(
        pool.allocator()
            .allocate(Layout::from_size_align(1024, 8).unwrap())
            .is_err()
    );
}
