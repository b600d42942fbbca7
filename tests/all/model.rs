//! Property test: random alloc/resize/remap/free sequences run against every
//! allocator and checked against a model of the live blocks (and, over the
//! smp allocator, against its heap checker after every step).
//!
//! The model keeps each live block's address, length, alignment and a seed;
//! every block is stamped with a pattern derived from its seed. After every
//! operation the test checks: contents preserved (by resize, remap, and
//! other blocks' operations), no two live blocks overlap, alignment honoured,
//! a successful resize keeps the block where it is (and a remap too, for the
//! allocators whose remap is resize-or-NULL). For the failing allocator the
//! model also predicts Zig's counters exactly; for the debug allocator (over
//! the C allocator: its address index; over smp, bare or behind the
//! thread-safe wrapper: its in-band headers), that it reported no misuse
//! and counted every block.

use std::mem::MaybeUninit;

use proptest::prelude::*;
use proptest::sample::Index;

use liballoc::allocators::debug::{la_debug_get_stats, la_debug_stats};
use liballoc::allocators::failing::{la_failing_get_stats, la_failing_stats};
use liballoc::allocators::smp::la_smp_check_heap;
use liballoc::vtable::{la_raw_alloc, la_raw_free, la_raw_remap, la_raw_resize};

/// Fails the test case with a message unless `cond` holds. (proptest's own
/// `prop_assert!` declares `extern crate alloc`, which in this crate's tests
/// is liballoc, not the standard library's.)
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(TestCaseError::fail(format!($($fmt)*)));
        }
    };
}

use crate::allocators::{Kind, Subject};

#[derive(Clone, Debug)]
enum Op {
    Alloc { len: usize, align: u8 },
    Resize { which: Index, new_len: usize },
    Remap { which: Index, new_len: usize },
    Free { which: Index },
}

fn len_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 1usize..=256,
        3 => 257usize..=8192,
        1 => 8193usize..=100_000,
    ]
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
    seed: u32,
}

fn pattern(seed: u32, k: usize) -> u8 {
    (seed
        .wrapping_mul(2_654_435_761)
        .wrapping_add((k as u32).wrapping_mul(40_503))
        >> 13) as u8
}

impl Block {
    fn stamp_from(&self, from: usize) {
        for k in from..self.len {
            // SAFETY: k < len, inside the live block.
            unsafe { self.ptr.add(k).write(pattern(self.seed, k)) };
        }
    }

    fn intact_up_to(&self, len: usize) -> bool {
        // SAFETY: len <= the block's live length, checked by the callers.
        (0..len).all(|k| unsafe { self.ptr.add(k).read() } == pattern(self.seed, k))
    }

    fn end(&self) -> usize {
        self.ptr as usize + self.len
    }
}

/// The counters Zig's FailingAllocator would show.
#[derive(Default, Debug, PartialEq, Eq)]
struct Counts {
    allocations: usize,
    deallocations: usize,
    allocated_bytes: usize,
    freed_bytes: usize,
}

impl Counts {
    fn resized(&mut self, len: usize, new_len: usize) {
        if new_len < len {
            self.freed_bytes += len - new_len;
        } else {
            self.allocated_bytes += new_len - len;
        }
    }
}

/// Checks that no two live blocks overlap and each is aligned; with
/// `contents`, also that every block still holds its pattern; over the smp
/// allocator, that its heap is consistent (`la_smp_check_heap`).
fn check_invariants(live: &[Block], kind: Kind, contents: bool) -> Result<(), TestCaseError> {
    if matches!(
        kind,
        Kind::Smp
            | Kind::ArenaOverSmp
            | Kind::BufferFirstOverSmp
            | Kind::DebugOverSmp
            | Kind::DebugOverThreadSafeSmp
    ) {
        ensure!(la_smp_check_heap() == 0, "{kind:?}: smp heap inconsistent");
    }
    let mut sorted: Vec<Block> = live.to_vec();
    sorted.sort_by_key(|b| b.ptr as usize);
    for pair in sorted.windows(2) {
        ensure!(
            pair[0].end() <= pair[1].ptr as usize,
            "{kind:?}: blocks overlap: {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
    for b in live {
        ensure!(
            (b.ptr as usize).is_multiple_of(1usize << b.align),
            "{:?}: misaligned {:?}",
            kind,
            b
        );
        ensure!(
            !contents || b.intact_up_to(b.len),
            "{:?}: contents of {:?} changed",
            kind,
            b
        );
    }
    Ok(())
}

fn run(kind: Kind, ops: &[Op]) -> Result<(), TestCaseError> {
    let subject = Subject::new(kind);
    let a = subject.a;
    let mut live: Vec<Block> = Vec::new();
    let mut counts = Counts::default();
    let mut seed = 1u32;
    for (n, op) in ops.iter().enumerate() {
        match *op {
            Op::Alloc { len, align } => {
                // SAFETY: a valid allocator; len > 0.
                let p = unsafe { la_raw_alloc(a, len, align, 0) }.cast::<u8>();
                if p.is_null() {
                    ensure!(
                        subject.bounded,
                        "{:?}: alloc({}, {}) failed",
                        kind,
                        len,
                        align
                    );
                    continue;
                }
                seed += 1;
                let b = Block {
                    ptr: p,
                    len,
                    align,
                    seed,
                };
                b.stamp_from(0);
                live.push(b);
                counts.allocations += 1;
                counts.allocated_bytes += len;
            }
            Op::Resize { which, new_len } => {
                if live.is_empty() {
                    continue;
                }
                let i = which.index(live.len());
                let b = live[i];
                // SAFETY: b is a live block as last granted.
                if unsafe { la_raw_resize(a, b.ptr.cast(), b.len, b.align, new_len, 0) } {
                    live[i].len = new_len;
                    ensure!(
                        b.intact_up_to(b.len.min(new_len)),
                        "{:?}: resize lost contents",
                        kind
                    );
                    live[i].stamp_from(b.len.min(new_len));
                    counts.resized(b.len, new_len);
                }
            }
            Op::Remap { which, new_len } => {
                if live.is_empty() {
                    continue;
                }
                let i = which.index(live.len());
                let b = live[i];
                // SAFETY: b is a live block as last granted.
                let p = unsafe { la_raw_remap(a, b.ptr.cast(), b.len, b.align, new_len, 0) }
                    .cast::<u8>();
                if !p.is_null() {
                    if subject.remap_in_place {
                        ensure!(p == b.ptr, "{:?}: remap moved a block", kind);
                    }
                    let moved = Block {
                        ptr: p,
                        len: new_len,
                        ..b
                    };
                    ensure!(
                        moved.intact_up_to(b.len.min(new_len)),
                        "{:?}: remap lost contents",
                        kind
                    );
                    moved.stamp_from(b.len.min(new_len));
                    live[i] = moved;
                    counts.resized(b.len, new_len);
                }
            }
            Op::Free { which } => {
                if live.is_empty() {
                    continue;
                }
                let b = live.swap_remove(which.index(live.len()));
                ensure!(
                    b.intact_up_to(b.len),
                    "{:?}: contents changed before free",
                    kind
                );
                // SAFETY: b is a live block as last granted; dead afterwards.
                unsafe { la_raw_free(a, b.ptr.cast(), b.len, b.align, 0) };
                counts.deallocations += 1;
                counts.freed_bytes += b.len;
            }
        }
        check_invariants(&live, kind, n % 4 == 3)?;
    }
    check_invariants(&live, kind, true)?;
    for b in live.drain(..) {
        // SAFETY: as above.
        unsafe { la_raw_free(a, b.ptr.cast(), b.len, b.align, 0) };
        counts.deallocations += 1;
        counts.freed_bytes += b.len;
    }
    if let Some(d) = subject.debug {
        let mut s = MaybeUninit::<la_debug_stats>::uninit();
        // SAFETY: live handle; writable out.
        let s = unsafe {
            la_debug_get_stats(d, s.as_mut_ptr());
            s.assume_init()
        };
        ensure!(s.errors == 0, "{kind:?}: misuse reported: {s:?}");
        ensure!(
            s.live_allocations == 0 && s.live_bytes == 0,
            "{kind:?}: blocks still live: {s:?}"
        );
        ensure!(
            s.total_allocations == counts.allocations && s.total_frees == counts.deallocations,
            "{kind:?}: counters {s:?}, model {counts:?}"
        );
    }
    if let Some(f) = subject.failing {
        let mut s = la_failing_stats::default();
        // SAFETY: live handle; writable out.
        unsafe { la_failing_get_stats(f, &mut s) };
        let seen = Counts {
            allocations: s.allocations,
            deallocations: s.deallocations,
            allocated_bytes: s.allocated_bytes,
            freed_bytes: s.freed_bytes,
        };
        ensure!(
            seen == counts,
            "failing counters {:?}, model {:?}",
            seen,
            counts
        );
        ensure!(
            !s.has_induced_failure,
            "induced failure without a fail index"
        );
    }
    Ok(())
}

/// One property test per allocator of the registry (`model::NAME::matches_model`),
/// so that a failure names it.
macro_rules! model_tests {
    ($($kind:ident => $name:ident,)*) => {
        $(
            mod $name {
                use super::*;

                proptest! {
                    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
                    #[test]
                    fn matches_model(ops in prop::collection::vec(op_strategy(), 1..64)) {
                        run(Kind::$kind, &ops)?;
                    }
                }
            }
        )*
    };
}

for_each_kind!(model_tests);
