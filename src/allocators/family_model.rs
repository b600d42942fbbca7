//! Property tests for the allocator family (buffer-first, thread-safe,
//! logging, memory pool): random operation sequences checked against a
//! model of the live blocks.
//!
//! For the general allocators, every live block is stamped with a pattern;
//! after each operation the test checks alignment, that no two live blocks
//! overlap, that contents survive resize/remap and other blocks' operations,
//! and that a successful resize keeps the address. For the pool it checks
//! alignment, uniqueness and contents of live items, LIFO reuse of destroyed
//! items, and that capacity only changes on growth or reset.

use proptest::prelude::*;
use proptest::sample::Index;

use crate::allocators::arena::{
    LA_ARENA_FREE_ALL, LA_ARENA_RETAIN_CAPACITY, LA_ARENA_RETAIN_WITH_LIMIT, la_arena_allocator,
    la_arena_create, la_arena_destroy,
};
use crate::allocators::buffer_first::{
    la_buffer_first, la_buffer_first_allocator, la_buffer_first_init,
};
use crate::allocators::c::la_c_allocator;
use crate::allocators::logging::{la_logging_allocator, la_logging_create, la_logging_destroy};
use crate::allocators::page::la_page_allocator;
use crate::allocators::pool::*;
use crate::allocators::smp::la_smp_allocator;
use crate::allocators::thread_safe::{
    la_thread_safe_allocator, la_thread_safe_create, la_thread_safe_destroy,
};
use crate::vtable::{la_allocator, la_raw_alloc, la_raw_free, la_raw_remap, la_raw_resize};

/// Fails the case unless `cond` holds (proptest's `prop_assert!` names
/// `alloc::`, which in this crate is liballoc itself).
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(TestCaseError::fail(format!($($fmt)*)));
        }
    };
}

#[derive(Clone, Debug)]
enum Op {
    Alloc { len: usize, align: u8 },
    Resize { which: Index, new_len: usize },
    Remap { which: Index, new_len: usize },
    Free { which: Index },
}

fn len_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 1usize..=128, 2 => 129usize..=4096, 1 => 4097usize..=70_000]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (len_strategy(), 0u8..=12).prop_map(|(len, align)| Op::Alloc { len, align }),
        2 => (any::<Index>(), len_strategy()).prop_map(|(which, new_len)| Op::Resize { which, new_len }),
        2 => (any::<Index>(), len_strategy()).prop_map(|(which, new_len)| Op::Remap { which, new_len }),
        2 => any::<Index>().prop_map(|which| Op::Free { which }),
    ]
}

#[derive(Clone, Copy, Debug)]
struct Block {
    ptr: *mut u8,
    len: usize,
    align: u8,
    seed: u8,
}

impl Block {
    fn byte(&self, k: usize) -> u8 {
        self.seed.wrapping_mul(31).wrapping_add(k as u8)
    }
    fn stamp(&self, from: usize) {
        for k in from..self.len {
            // SAFETY: k < len, inside the live block.
            unsafe { self.ptr.add(k).write(self.byte(k)) };
        }
    }
    fn intact(&self, upto: usize) -> bool {
        // SAFETY: upto <= len; the block is live.
        (0..upto).all(|k| unsafe { self.ptr.add(k).read() } == self.byte(k))
    }
}

fn check_all(live: &[Block]) -> Result<(), TestCaseError> {
    let mut spans: Vec<(usize, usize)> = live.iter().map(|b| (b.ptr as usize, b.len)).collect();
    spans.sort();
    for w in spans.windows(2) {
        ensure!(w[0].0 + w[0].1 <= w[1].0, "overlapping blocks {:?}", w);
    }
    for b in live {
        ensure!(b.intact(b.len), "block {:?} lost its contents", b);
    }
    Ok(())
}

fn run(a: la_allocator, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut live: Vec<Block> = Vec::new();
    let mut seed = 0u8;
    for op in ops {
        // SAFETY: every pointer handed back is a live block of `a` with
        // the length and alignment the model recorded.
        unsafe {
            match *op {
                Op::Alloc { len, align } => {
                    let p = la_raw_alloc(a, len, align, 0) as *mut u8;
                    if !p.is_null() {
                        ensure!(
                            (p as usize).is_multiple_of(1usize << align),
                            "misaligned {p:?}"
                        );
                        seed = seed.wrapping_add(1);
                        let b = Block {
                            ptr: p,
                            len,
                            align,
                            seed,
                        };
                        b.stamp(0);
                        live.push(b);
                    }
                }
                Op::Resize { which, new_len } if !live.is_empty() => {
                    let i = which.index(live.len());
                    let b = live[i];
                    if la_raw_resize(a, b.ptr.cast(), b.len, b.align, new_len, 0) {
                        ensure!(b.intact(b.len.min(new_len)), "resize lost contents");
                        live[i].len = new_len;
                        live[i].stamp(b.len.min(new_len));
                    }
                }
                Op::Remap { which, new_len } if !live.is_empty() => {
                    let i = which.index(live.len());
                    let b = live[i];
                    let p = la_raw_remap(a, b.ptr.cast(), b.len, b.align, new_len, 0) as *mut u8;
                    if !p.is_null() {
                        ensure!(
                            (p as usize).is_multiple_of(1usize << b.align),
                            "remap misaligned"
                        );
                        live[i].ptr = p;
                        live[i].len = new_len;
                        ensure!(live[i].intact(b.len.min(new_len)), "remap lost contents");
                        live[i].stamp(b.len.min(new_len));
                    }
                }
                Op::Free { which } if !live.is_empty() => {
                    let b = live.swap_remove(which.index(live.len()));
                    la_raw_free(a, b.ptr.cast(), b.len, b.align, 0);
                }
                _ => {}
            }
        }
        check_all(&live)?;
    }
    for b in live {
        // SAFETY: a live block of `a`.
        unsafe { la_raw_free(a, b.ptr.cast(), b.len, b.align, 0) };
    }
    Ok(())
}

fn with_buffer_first(fallback: la_allocator, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut buf = vec![0u8; 8192];
    let mut bf = Box::new(core::mem::MaybeUninit::<la_buffer_first>::uninit());
    // SAFETY: writable state, a buffer that outlives it, a valid fallback.
    unsafe {
        la_buffer_first_init(
            bf.as_mut_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            fallback,
        );
        run(la_buffer_first_allocator(bf.as_mut_ptr()), ops)
    }
}

#[derive(Clone, Debug)]
enum PoolOp {
    Create,
    Destroy(Index),
    Reset(u8, usize),
    Preheat(usize),
}

fn pool_op() -> impl Strategy<Value = PoolOp> {
    prop_oneof![
        8 => Just(PoolOp::Create),
        4 => any::<Index>().prop_map(PoolOp::Destroy),
        1 => (0u8..3, 0usize..20_000).prop_map(|(m, l)| PoolOp::Reset(m, l)),
        1 => (0usize..300).prop_map(PoolOp::Preheat),
    ]
}

fn run_pool(size: usize, align: usize, ops: &[PoolOp]) -> Result<(), TestCaseError> {
    let pool = la_pool_create(la_c_allocator(), size, align);
    ensure!(!pool.is_null(), "pool creation failed");
    let mut live: Vec<(usize, u8)> = Vec::new();
    let mut last_destroyed: Option<usize> = None;
    let mut tag = 0u8;
    // SAFETY: `pool` is live; items are used within `size` bytes.
    unsafe {
        for op in ops {
            let cap_before = la_pool_query_capacity(pool);
            match *op {
                PoolOp::Create => {
                    let p = la_pool_create_item(pool) as usize;
                    ensure!(p != 0, "pool out of memory");
                    ensure!(p.is_multiple_of(align), "item {p:#x} misaligned");
                    ensure!(live.iter().all(|&(q, _)| q != p), "item handed out twice");
                    if let Some(d) = last_destroyed.take() {
                        ensure!(p == d, "destroyed item not reused first");
                    }
                    tag = tag.wrapping_add(1);
                    (p as *mut u8).write_bytes(tag, size);
                    live.push((p, tag));
                    ensure!(
                        la_pool_query_capacity(pool) >= cap_before,
                        "capacity shrank"
                    );
                }
                PoolOp::Destroy(i) if !live.is_empty() => {
                    let (p, _) = live.swap_remove(i.index(live.len()));
                    la_pool_destroy_item(pool, p as *mut _);
                    last_destroyed = Some(p);
                    ensure!(
                        la_pool_query_capacity(pool) == cap_before,
                        "destroy changed capacity"
                    );
                }
                PoolOp::Reset(m, limit) => {
                    let mode = [
                        LA_ARENA_FREE_ALL,
                        LA_ARENA_RETAIN_CAPACITY,
                        LA_ARENA_RETAIN_WITH_LIMIT,
                    ][m as usize];
                    ensure!(la_pool_reset(pool, mode, limit), "reset failed");
                    live.clear();
                    last_destroyed = None;
                    let cap = la_pool_query_capacity(pool);
                    match m {
                        0 => ensure!(cap == 0, "free_all kept {cap}"),
                        1 => ensure!(cap == cap_before, "retain changed capacity"),
                        _ => ensure!(cap <= cap_before, "limit grew capacity"),
                    }
                }
                PoolOp::Preheat(n) => {
                    ensure!(la_pool_preheat(pool, n), "preheat failed");
                    ensure!(
                        la_pool_query_capacity(pool) == cap_before + n,
                        "preheat capacity"
                    );
                }
                _ => {}
            }
            for &(p, t) in &live {
                let s = core::slice::from_raw_parts(p as *const u8, size);
                ensure!(s.iter().all(|&b| b == t), "item {p:#x} lost its contents");
            }
        }
        la_pool_destroy(pool);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn buffer_first_over_c(ops in prop::collection::vec(op_strategy(), 1..64)) {
        with_buffer_first(la_c_allocator(), &ops)?;
    }

    #[test]
    fn buffer_first_over_smp(ops in prop::collection::vec(op_strategy(), 1..64)) {
        with_buffer_first(la_smp_allocator(), &ops)?;
    }

    #[test]
    fn thread_safe_over_arena(ops in prop::collection::vec(op_strategy(), 1..64)) {
        // SAFETY: a live arena; the wrapper is destroyed before it.
        unsafe {
            let arena = la_arena_create(la_page_allocator());
            let ts = la_thread_safe_create(la_arena_allocator(arena));
            run(la_thread_safe_allocator(ts), &ops)?;
            la_thread_safe_destroy(ts);
            la_arena_destroy(arena);
        }
    }

    #[test]
    fn logging_over_c(ops in prop::collection::vec(op_strategy(), 1..64)) {
        let devnull = std::fs::OpenOptions::new().write(true).open("/dev/null").unwrap();
        let lg = la_logging_create(la_c_allocator(), std::os::fd::AsRawFd::as_raw_fd(&devnull), 0);
        // SAFETY: live wrapper, destroyed after use.
        unsafe {
            run(la_logging_allocator(lg), &ops)?;
            la_logging_destroy(lg);
        }
    }

    #[test]
    fn pool_matches_model(
        size in 1usize..300,
        align_log2 in 0u32..8,
        ops in prop::collection::vec(pool_op(), 1..200),
    ) {
        run_pool(size, 1 << align_log2, &ops)?;
    }
}
