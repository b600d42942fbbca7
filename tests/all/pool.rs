//! Property test of the memory pool against a model of its items: live
//! items stay aligned, distinct and intact; a destroyed item is the next one
//! handed out; capacity only changes on growth, preheat or reset.

use proptest::prelude::*;
use proptest::sample::Index;

use liballoc::allocators::arena::{
    LA_ARENA_FREE_ALL, LA_ARENA_RETAIN_CAPACITY, LA_ARENA_RETAIN_WITH_LIMIT,
};
use liballoc::allocators::c::la_c_allocator;
use liballoc::allocators::pool::*;

/// Fails the test case with a message unless `cond` holds (see model.rs).
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(TestCaseError::fail(format!($($fmt)*)));
        }
    };
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
    fn pool_matches_model(
        size in 1usize..300,
        align_log2 in 0u32..8,
        ops in prop::collection::vec(pool_op(), 1..200),
    ) {
        run_pool(size, 1 << align_log2, &ops)?;
    }
}
