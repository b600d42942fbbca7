//! Several threads on one allocator at once: the arena over thread-safe
//! children (smp, c, page, and a child that fails now and then) and the
//! thread-safe fixed buffer.
//!
//! Every round starts all threads together on an empty (or just reset)
//! arena, so they race to publish the first nodes, park the losers' nodes on
//! the free list and steal them back: the arena's lock-free paths. Each
//! thread stamps its blocks with its own pattern and sometimes grows, shrinks
//! or frees its latest block; afterwards every live block must be intact and
//! no two may overlap.

use std::sync::Barrier;

use liballoc::allocators::arena::{
    LA_ARENA_FREE_ALL, LA_ARENA_RETAIN_CAPACITY, LA_ARENA_RETAIN_WITH_LIMIT, la_arena_allocator,
    la_arena_create, la_arena_destroy, la_arena_query_capacity, la_arena_reset,
    la_arena_reset_mode,
};
use liballoc::allocators::c::la_c_allocator;
use liballoc::allocators::fixed_buffer::{
    la_fixed_buffer, la_fixed_buffer_init, la_fixed_buffer_thread_safe_allocator,
};
use liballoc::allocators::page::la_page_allocator;

use crate::allocators::flaky_allocator;
use liballoc::allocators::smp::la_smp_allocator;
use liballoc::la_allocator;
use liballoc::vtable::{la_raw_alloc, la_raw_free, la_raw_resize};

const THREADS: usize = 4;
const PER_THREAD: usize = 400;

#[derive(Clone, Copy)]
struct Block {
    ptr: usize,
    len: usize,
    seed: usize,
}

fn byte(seed: usize, k: usize) -> u8 {
    (seed.wrapping_mul(0x9e37_79b9).wrapping_add(k * 131) >> 7) as u8
}

impl Block {
    fn stamp(&self, from: usize) {
        for k in from..self.len {
            // SAFETY: k < len, inside a live block owned by this thread.
            unsafe { (self.ptr as *mut u8).add(k).write(byte(self.seed, k)) };
        }
    }
    fn intact(&self) -> bool {
        // SAFETY: as above.
        (0..self.len).all(|k| unsafe { *(self.ptr as *const u8).add(k) } == byte(self.seed, k))
    }
}

/// An allocator handle that may cross threads (the allocators used here are
/// thread-safe).
#[derive(Clone, Copy)]
struct Shared(la_allocator);
// SAFETY: only thread-safe allocators are wrapped.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    /// The allocator (a method, so closures capture the whole `Shared`).
    fn get(self) -> la_allocator {
        self.0
    }
}

/// One round: all threads allocate at once; returns the live blocks.
fn round(a: Shared, round_no: usize, may_fail: bool) -> Vec<Block> {
    let start = Barrier::new(THREADS);
    let mut all = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let start = &start;
                s.spawn(move || {
                    let a = a.get();
                    let mut rng = (t + 1) * 0x2545_f491 + round_no * 7919;
                    let mut next = move || {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        rng
                    };
                    let mut live: Vec<Block> = Vec::new();
                    start.wait();
                    for i in 0..PER_THREAD {
                        let len = 1 + next() % 700;
                        let align = (next() % 8) as u8;
                        // SAFETY: a thread-safe allocator; len > 0.
                        let p = unsafe { la_raw_alloc(a, len, align, 0) } as usize;
                        if p == 0 {
                            assert!(may_fail, "allocation failed");
                            continue;
                        }
                        assert_eq!(p % (1 << align), 0, "misaligned");
                        let b = Block {
                            ptr: p,
                            len,
                            seed: (t << 24) | (round_no << 12) | i,
                        };
                        b.stamp(0);
                        live.push(b);
                        let last = live.len() - 1;
                        let b = live[last];
                        match next() % 6 {
                            // SAFETY: b is this thread's live block as last granted.
                            0 => unsafe {
                                if la_raw_resize(a, b.ptr as *mut _, b.len, align, b.len + 64, 0) {
                                    live[last].len += 64;
                                    live[last].stamp(b.len);
                                }
                            },
                            // SAFETY: as above.
                            1 => unsafe {
                                assert!(la_raw_resize(
                                    a,
                                    b.ptr as *mut _,
                                    b.len,
                                    align,
                                    b.len.div_ceil(2),
                                    0
                                ));
                                live[last].len = b.len.div_ceil(2);
                            },
                            // SAFETY: as above; the block is dead afterwards.
                            2 => unsafe {
                                assert!(b.intact());
                                la_raw_free(a, b.ptr as *mut _, b.len, align, 0);
                                live.pop();
                            },
                            _ => {}
                        }
                    }
                    live
                })
            })
            .collect();
        for h in handles {
            all.extend(h.join().unwrap());
        }
    });
    all
}

fn check(blocks: &mut [Block]) {
    assert!(
        blocks.iter().all(Block::intact),
        "a block's contents changed"
    );
    blocks.sort_by_key(|b| b.ptr);
    for w in blocks.windows(2) {
        assert!(w[0].ptr + w[0].len <= w[1].ptr, "two live blocks overlap");
    }
}

fn arena_rounds(child: la_allocator, may_fail: bool) {
    // SAFETY: the child is valid and thread-safe.
    let arena = (0..64)
        .map(|_| unsafe { la_arena_create(child) })
        .find(|a| !a.is_null())
        .expect("arena creation keeps failing");
    let a = Shared(la_arena_allocator(arena));
    let modes: [(la_arena_reset_mode, usize); 4] = [
        (LA_ARENA_FREE_ALL, 0),
        (LA_ARENA_RETAIN_CAPACITY, 0),
        (LA_ARENA_RETAIN_WITH_LIMIT, 10_000),
        (LA_ARENA_RETAIN_WITH_LIMIT, 100),
    ];
    for r in 0..16 {
        let mut blocks = round(a, r, may_fail);
        check(&mut blocks);
        let (mode, limit) = modes[r % modes.len()];
        // SAFETY: no thread uses the arena now; its blocks are dropped.
        unsafe {
            let before = la_arena_query_capacity(arena);
            let ok = la_arena_reset(arena, mode, limit);
            let after = la_arena_query_capacity(arena);
            if mode == LA_ARENA_FREE_ALL {
                assert!(ok);
                assert_eq!(after, 0);
            } else if mode == LA_ARENA_RETAIN_CAPACITY && ok {
                assert_eq!(after, before);
            } else if ok {
                assert!(after <= limit);
            }
        }
    }
    // SAFETY: no thread uses the arena now.
    unsafe { la_arena_destroy(arena) };
}

#[test]
fn arena_over_smp_from_four_threads() {
    arena_rounds(la_smp_allocator(), false);
}

#[test]
fn arena_over_c_from_four_threads() {
    arena_rounds(la_c_allocator(), false);
}

#[test]
fn arena_over_page_from_four_threads() {
    arena_rounds(la_page_allocator(), false);
}

#[test]
fn arena_over_flaky_child_from_four_threads() {
    arena_rounds(flaky_allocator(), true);
}

#[test]
fn thread_safe_fixed_buffer_from_four_threads() {
    let mut buf = vec![0u8; THREADS * PER_THREAD * 1024];
    let mut fb = Box::new(la_fixed_buffer {
        buffer: std::ptr::null_mut(),
        len: 0,
        end_index: 0,
    });
    for r in 0..8 {
        // SAFETY: fb is writable; buf outlives every block.
        unsafe { la_fixed_buffer_init(&mut *fb, buf.as_mut_ptr().cast(), buf.len()) };
        let a = Shared(la_fixed_buffer_thread_safe_allocator(&mut *fb));
        let mut blocks = round(a, r, false);
        check(&mut blocks);
        assert!(fb.end_index <= fb.len);
    }
}
