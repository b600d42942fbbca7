//! Redzones: the canary bytes around blocks that reveal overflows and
//! underflows.
//!
//! Redzone byte at address `a` holds byte `a % 8` of the instance's canary,
//! so an aligned word of redzone equals the canary itself and the checks run
//! a word at a time. A backing block is `[front redzone | user | back
//! redzone]`, the front at least 16 bytes (and at least the alignment), the
//! back at least 16 bytes plus the rounding of the length to 16; a guarded
//! block's redzones are the slack between its guard pages and the user
//! bytes. (The free fill inside freed blocks is `fill.rs`.)

use super::table::{KIND_GUARDED, Record};
use super::{FREE_FILL, REDZONE, la_debug};
use crate::sys;

/// The default canary of an instance, from a per-instance `seed`: eight
/// bytes that vary with the seed but each lie in `0x80..=0xfe` and are
/// never the free fill. A one-byte overflow of NUL (the classic string
/// off-by-one), a small integer, `0xff` or ASCII text therefore always
/// changes the redzone and is caught, whatever the seed; a canary taken
/// straight from the seed would let such a write through whenever the byte
/// it hits happens to match (1 time in 256 per byte).
pub(super) fn default_canary(seed: u64) -> u64 {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x85df_f10f_9232_a6ff;
    let mut c = 0u64;
    for i in 0..8 {
        x ^= x >> 29;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        // 127 values 0x80..=0xfe; 0xdd (the free fill) moves to 0xde.
        let mut b = 0x80 + ((x >> 56) % 127) as u8;
        if b == FREE_FILL {
            b += 1;
        }
        c |= u64::from(b) << (i * 8);
    }
    c
}

#[inline]
pub(super) fn canary_byte(canary: u64, addr: usize) -> u8 {
    (canary >> ((addr & 7) * 8)) as u8
}

/// The canary bytes of `[addr, addr + 8)` as one (unaligned) word, in the
/// byte order of memory.
#[inline]
fn canary_word(canary: u64, addr: usize) -> u64 {
    canary.rotate_right(((addr & 7) * 8) as u32).to_le()
}

/// Writes the canary over `[lo, hi)`: an unaligned word at each end and
/// aligned words between (bytes only when the range is under 8 bytes).
pub(super) fn fill_canary(canary: u64, lo: usize, hi: usize) {
    if hi - lo < 8 {
        for a in lo..hi {
            // SAFETY: callers pass redzone ranges inside a block we own.
            unsafe { *(a as *mut u8) = canary_byte(canary, a) };
        }
        return;
    }
    // SAFETY: as above; [lo, lo + 8) and [hi - 8, hi) lie in the range.
    unsafe {
        (lo as *mut u64).write_unaligned(canary_word(canary, lo));
        ((hi - 8) as *mut u64).write_unaligned(canary_word(canary, hi - 8));
    }
    let mut a = (lo + 7) & !7;
    // An aligned word holds the canary's bytes in address order.
    while a + 8 <= hi {
        // SAFETY: as above; `a` is 8-aligned.
        unsafe { *(a as *mut u64) = canary.to_le() };
        a += 8;
    }
}

/// The first address in `[lo, hi)` not holding the canary.
pub(super) fn check_canary(canary: u64, lo: usize, hi: usize) -> Option<usize> {
    if hi - lo >= 8 {
        // Words first (all intact is the common case), then bytes to
        // locate a difference.
        // SAFETY: callers pass redzone ranges inside a block we own.
        let mut ok = unsafe {
            (lo as *const u64).read_unaligned() == canary_word(canary, lo)
                && ((hi - 8) as *const u64).read_unaligned() == canary_word(canary, hi - 8)
        };
        let mut a = (lo + 7) & !7;
        while ok && a + 8 <= hi {
            // SAFETY: as above; `a` is 8-aligned.
            ok = unsafe { *(a as *const u64) } == canary.to_le();
            a += 8;
        }
        if ok {
            return None;
        }
    }
    (lo..hi).find(|&a| {
        // SAFETY: as above.
        let b = unsafe { *(a as *const u8) };
        b != canary_byte(canary, a)
    })
}

/// Whether block `r` has the common shape: a backing block, 16-aligned,
/// with a 16-byte front redzone and the back redzone of a fresh block (the
/// length rounded up to 16, plus 16), so both redzones lie in three aligned
/// 16-byte chunks: `[base, base + 16)` and the last two of the block.
#[cfg(target_arch = "x86_64")]
#[inline]
fn compact(r: &Record) -> bool {
    r.kind == super::table::KIND_BACKING
        && r.addr.wrapping_sub(r.base) == REDZONE
        && r.base.is_multiple_of(16)
        && r.base_len == ((r.len + 15) & !15) + 2 * REDZONE
}

impl la_debug {
    /// Writes the canary into both redzones of a fresh block (whose user
    /// bytes hold nothing yet: a compact block's last chunks are written
    /// whole, user bytes included).
    pub(super) fn fill_zones(&self, r: &Record) {
        #[cfg(target_arch = "x86_64")]
        if compact(r) {
            // SAFETY: `compact` checked the shape.
            unsafe { self.fill_compact_zones(r) };
            return;
        }
        for (lo, hi) in Self::zones(r) {
            fill_canary(self.canary, lo, hi);
        }
    }

    /// [`Self::fill_zones`] of a block of the compact shape (a fresh
    /// in-band block always has it).
    ///
    /// # Safety
    /// `compact(r)` holds, and `r` is a fresh block we own.
    #[inline(always)]
    pub(super) unsafe fn fill_compact_zones(&self, r: &Record) {
        #[cfg(target_arch = "x86_64")]
        {
            use core::arch::x86_64::{__m128i, _mm_set1_epi64x, _mm_store_si128};
            debug_assert!(compact(r));
            let end = r.base + r.base_len;
            // SAFETY: SSE2 is baseline on x86-64; the three chunks are
            // 16-aligned and inside the fresh block (caller's promise: the
            // block is at least 32 bytes (a zero-length block: the first and
            // the second chunk are then the same), its first and last 32 bytes are
            // ours).
            unsafe {
                let c = _mm_set1_epi64x(self.canary as i64);
                _mm_store_si128(r.base as *mut __m128i, c);
                _mm_store_si128((end - 32) as *mut __m128i, c);
                _mm_store_si128((end - 16) as *mut __m128i, c);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        for (lo, hi) in Self::zones(r) {
            fill_canary(self.canary, lo, hi);
        }
    }

    /// True when both redzones of `r` are known intact by a quick check
    /// (compact blocks on x86-64: three 16-byte compares); false means
    /// look closer with [`check_canary`].
    #[inline]
    pub(super) fn zones_intact(&self, r: &Record) -> bool {
        #[cfg(target_arch = "x86_64")]
        if compact(r) {
            use core::arch::x86_64::{
                __m128i, _mm_cmpeq_epi8, _mm_load_si128, _mm_movemask_epi8, _mm_set1_epi64x,
            };
            let end = r.base + r.base_len;
            // The back redzone starts this many bytes into the
            // second-to-last chunk (1 to 16).
            let skip = r.addr + r.len - (end - 32);
            let need = (0xffff_u32 << skip) & 0xffff;
            // SAFETY: SSE2 is baseline on x86-64; the chunks are 16-aligned
            // inside the block (see `fill_zones`).
            unsafe {
                let c = _mm_set1_epi64x(self.canary as i64);
                let m = |a: usize| {
                    _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_load_si128(a as *const __m128i), c)) as u32
                };
                return (m(r.base) & m(end - 16)) == 0xffff && m(end - 32) & need == need;
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = r;
        false
    }

    /// [`Self::zones_intact`] of a block known to have the compact shape:
    /// user bytes `[p, p + len)`, 16-aligned, inside a backing block with
    /// a 16-byte front redzone and a back redzone up to the next multiple
    /// of 16 past `p + len`, plus 16 (a live in-band block whose header
    /// passed). Three aligned 16-byte loads, no record built or read.
    ///
    /// # Safety
    /// `[p - 16, p + len.next_multiple_of(16) + 16)` is memory of a block we
    /// hold, and `p` is 16-aligned.
    #[inline(always)]
    pub(super) unsafe fn compact_zones_intact(&self, p: usize, len: usize) -> bool {
        debug_assert!(p.is_multiple_of(16));
        #[cfg(target_arch = "x86_64")]
        {
            use core::arch::x86_64::{
                __m128i, _mm_cmpeq_epi8, _mm_load_si128, _mm_movemask_epi8, _mm_set1_epi64x,
            };
            let end = p + ((len + 15) & !15) + REDZONE;
            // The back redzone starts this many bytes into the
            // second-to-last chunk (1 to 16).
            let skip = p + len - (end - 32);
            let need = (0xffff_u32 << skip) & 0xffff;
            // SAFETY: SSE2 is baseline on x86-64; the chunks are 16-aligned
            // inside the block (caller's promise).
            unsafe {
                let c = _mm_set1_epi64x(self.canary as i64);
                let m = |a: usize| {
                    _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_load_si128(a as *const __m128i), c)) as u32
                };
                (m(p - REDZONE) & m(end - 16)) == 0xffff && m(end - 32) & need == need
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let view = Record {
                addr: p,
                len,
                base: p - REDZONE,
                base_len: len.next_multiple_of(REDZONE) + 2 * REDZONE,
                kind: super::table::KIND_BACKING,
                ..Record::EMPTY
            };
            self.zones_intact(&view)
        }
    }

    /// The redzones of a record: `[(front_lo, front_hi), (back_lo, back_hi)]`.
    /// A guarded block's lie in its accessible body: from the start of the
    /// block's first page to the upper guard page (below the body, all is
    /// inaccessible).
    pub(super) fn zones(r: &Record) -> [(usize, usize); 2] {
        let (lo, hi) = if r.kind == KIND_GUARDED {
            let page = sys::page_size();
            (
                crate::alignment::backward(r.addr, page),
                r.base + r.base_len - page,
            )
        } else {
            (r.base, r.base + r.base_len)
        };
        [(lo, r.addr), (r.addr + r.len, hi)]
    }

    /// Bytes the block can grow to in place.
    pub(super) fn capacity(r: &Record) -> usize {
        if r.kind == KIND_GUARDED {
            r.base + r.base_len - sys::page_size() - r.addr
        } else {
            r.base + r.base_len - REDZONE - r.addr
        }
    }
}
