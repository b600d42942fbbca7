//! The free fill: the bytes written over freed blocks (`FREE_FILL`) and
//! checked when they leave the quarantine, revealing writes after free.
//!
//! Both run with the widest vector steps the CPU has (32 bytes with AVX2,
//! detected once; 16-byte SSE2 otherwise; words off x86-64), a length that
//! is not a multiple of the step ending with a step that overlaps bytes
//! already done, never byte by byte. The check folds every step into one
//! accumulator tested once per block; only a block that fails it is
//! searched byte by byte for the offset its report names.

use super::FREE_FILL;
#[cfg(target_arch = "x86_64")]
use core::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// Fills are written with vector stores by this file up to this many
/// bytes; longer ones call `memset` (which streams very long ones past the
/// caches).
const FILL_INLINE_MAX: usize = 4096;

/// Blocks of 32 to this many bytes are filled and checked (with AVX2) by
/// straight-line code of exactly as many 32-byte steps as they need,
/// entered by one jump on the count ([`by_count!`]); longer ones by a loop.
#[cfg(target_arch = "x86_64")]
const STRAIGHT_MAX: usize = 512;

/// Writes `byte` over the `len` bytes at `dst`: `ptr::write_bytes`, but
/// without a call into `memset` for blocks of up to [`FILL_INLINE_MAX`]
/// bytes. A length that is not a multiple of the store width ends with
/// a store that overlaps bytes already written, never byte by byte:
/// 32-byte stores with AVX2 (when the CPU has it), 16-byte SSE2 stores
/// otherwise, words off x86-64.
///
/// # Safety
/// - `dst..dst + len` is writable memory that nothing else accesses
///   during the call.
#[inline]
pub(super) unsafe fn fill_bytes(dst: *mut u8, byte: u8, len: usize) {
    debug_assert!(!dst.is_null() || len == 0);
    #[cfg(target_arch = "x86_64")]
    if AVX2.load(Relaxed) == AVX2_YES {
        // SAFETY: the CPU has AVX2; the range is the caller's.
        unsafe { fill_avx2(dst, byte, len) };
    } else {
        // SAFETY: the range is the caller's.
        unsafe { fill_other(dst, byte, len) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    if len > FILL_INLINE_MAX {
        // SAFETY: the range is the caller's.
        unsafe { core::ptr::write_bytes(dst, byte, len) };
    } else {
        // SAFETY: the range is the caller's.
        unsafe { fill_words(dst, byte, len) };
    }
}

/// The offset of the first byte of `bytes` that is not `FREE_FILL`.
///
/// A clean block (the common case) is checked in one pass with a single
/// test at the end: every load is compared with the fill and the results
/// are folded into one accumulator (32-byte loads with AVX2, when the CPU
/// has it, 16-byte SSE2 loads otherwise, words off x86-64; a length that
/// is not a multiple of the load width ends with a load overlapping bytes
/// already read). Only a block that differs is searched again, word by
/// word then byte by byte, for its first bad byte.
#[inline]
pub(super) fn first_unfilled(bytes: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if AVX2.load(Relaxed) == AVX2_YES {
        // SAFETY: the CPU has AVX2; [p, p + n) is `bytes`.
        unsafe { first_unfilled_avx2(bytes.as_ptr(), bytes.len()) }
    } else {
        first_unfilled_other(bytes)
    }
    #[cfg(not(target_arch = "x86_64"))]
    first_unfilled_words(bytes)
}

/// [`fill_bytes`] when AVX2 is not known to be there (yet): asks once,
/// then fills with AVX2 or SSE2, or calls `memset` for a long block.
///
/// # Safety
/// As [`fill_bytes`].
#[cfg(target_arch = "x86_64")]
#[inline(never)]
unsafe fn fill_other(dst: *mut u8, byte: u8, len: usize) {
    if has_avx2() {
        // SAFETY: the CPU has AVX2; the range is the caller's.
        unsafe { fill_avx2(dst, byte, len) };
    } else if len > FILL_INLINE_MAX {
        // SAFETY: the range is the caller's.
        unsafe { core::ptr::write_bytes(dst, byte, len) };
    } else {
        // SAFETY: the range is the caller's.
        unsafe { fill_sse2(dst, byte, len) };
    }
}

/// [`first_unfilled`] when AVX2 is not known to be there (yet).
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn first_unfilled_other(bytes: &[u8]) -> Option<usize> {
    if has_avx2() {
        // SAFETY: the CPU has AVX2; [p, p + n) is `bytes`.
        unsafe { first_unfilled_avx2(bytes.as_ptr(), bytes.len()) }
    } else {
        first_unfilled_sse2(bytes)
    }
}

/// [`first_unfilled`] with SSE2 (part of the x86-64 baseline).
#[cfg(target_arch = "x86_64")]
#[inline]
fn first_unfilled_sse2(bytes: &[u8]) -> Option<usize> {
    // SAFETY: [p, p + n) is `bytes`.
    if unsafe { filled_sse2(bytes.as_ptr(), bytes.len()) } {
        None
    } else {
        first_unfilled_slow(bytes)
    }
}

/// [`first_unfilled`] a word at a time (the portable version; on x86-64
/// only the tests use it).
#[cfg(any(not(target_arch = "x86_64"), test))]
fn first_unfilled_words(bytes: &[u8]) -> Option<usize> {
    // SAFETY: [p, p + n) is `bytes`.
    if unsafe { filled_words(bytes.as_ptr(), bytes.len()) } {
        None
    } else {
        first_unfilled_slow(bytes)
    }
}

/// The precise search of [`first_unfilled`] once a difference is known:
/// words up to the first that differs, then bytes.
#[cold]
#[inline(never)]
fn first_unfilled_slow(bytes: &[u8]) -> Option<usize> {
    let word = splat(FREE_FILL);
    let mut off = 0;
    while off + 8 <= bytes.len() {
        // SAFETY: off + 8 <= len: inside `bytes`.
        if unsafe { bytes.as_ptr().add(off).cast::<u64>().read_unaligned() } != word {
            break;
        }
        off += 8;
    }
    bytes[off..]
        .iter()
        .position(|&b| b != FREE_FILL)
        .map(|i| off + i)
}

/// `x`, hidden from the optimizer: a loop whose step goes through here
/// stays as written. It is neither unrolled further (at the lengths of
/// most blocks the setup of a longer loop costs more than it saves) nor,
/// for a store loop, turned back into a call to `memset` (which the loop
/// is there to avoid). Emits no instruction.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn opaque(mut x: usize) -> usize {
    // SAFETY: an empty asm block (its text is a comment): it touches no
    // memory, stack or flags and leaves `x` as it is.
    unsafe {
        core::arch::asm!("/* {0} */", inout(reg) x, options(pure, nomem, nostack, preserves_flags))
    };
    x
}

/// Whether the CPU has AVX2: 0 not known yet, 1 no, [`AVX2_YES`]. A byte
/// compared with a constant on each call (the standard library's feature
/// cache costs a word tested twice, behind a global offset table entry).
#[cfg(target_arch = "x86_64")]
static AVX2: AtomicU8 = AtomicU8::new(0);

#[cfg(target_arch = "x86_64")]
const AVX2_YES: u8 = 2;

/// Whether the CPU has AVX2 (asked once, then read from [`AVX2`]).
#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2() -> bool {
    match AVX2.load(Relaxed) {
        0 => {
            let yes = std::arch::is_x86_feature_detected!("avx2");
            AVX2.store(if yes { AVX2_YES } else { 1 }, Relaxed);
            yes
        }
        v => v == AVX2_YES,
    }
}

/// The bytes of `byte` repeated over a `u64`.
#[inline(always)]
fn splat(byte: u8) -> u64 {
    u64::from(byte).wrapping_mul(0x0101_0101_0101_0101)
}

/// Whether the `n` (under 16) bytes at `p` are all `FREE_FILL`: two
/// overlapping words (or half-words; bytes under 4).
///
/// # Safety
/// - `p..p + n` is readable.
#[inline(always)]
unsafe fn filled_short(p: *const u8, n: usize) -> bool {
    debug_assert!(n < 16);
    let word = splat(FREE_FILL);
    // SAFETY: (all reads) each lies in [p, p + n) by the length tests.
    unsafe {
        if n >= 8 {
            let a = p.cast::<u64>().read_unaligned();
            let b = p.add(n - 8).cast::<u64>().read_unaligned();
            (a ^ word) | (b ^ word) == 0
        } else if n >= 4 {
            let a = p.cast::<u32>().read_unaligned();
            let b = p.add(n - 4).cast::<u32>().read_unaligned();
            (a ^ word as u32) | (b ^ word as u32) == 0
        } else if n > 0 {
            // The first, middle and last bytes: all of 1 to 3.
            (*p ^ FREE_FILL) | (*p.add(n / 2) ^ FREE_FILL) | (*p.add(n - 1) ^ FREE_FILL) == 0
        } else {
            true
        }
    }
}

/// Writes `byte` over the `n` (under 16) bytes at `p`, the way
/// [`filled_short`] reads them.
///
/// # Safety
/// - `p..p + n` is writable.
#[inline(always)]
unsafe fn fill_short(p: *mut u8, byte: u8, n: usize) {
    debug_assert!(n < 16);
    let word = splat(byte);
    // SAFETY: (all writes) each lies in [p, p + n) by the length tests.
    unsafe {
        if n >= 8 {
            p.cast::<u64>().write_unaligned(word);
            p.add(n - 8).cast::<u64>().write_unaligned(word);
        } else if n >= 4 {
            p.cast::<u32>().write_unaligned(word as u32);
            p.add(n - 4).cast::<u32>().write_unaligned(word as u32);
        } else if n > 0 {
            // The first, middle and last bytes: all of 1 to 3.
            *p = byte;
            *p.add(n / 2) = byte;
            *p.add(n - 1) = byte;
        }
    }
}

/// `$body` (a statement) with the constant `$k` set to `$m`, a count from
/// 1 to 15: one jump into straight-line code of exactly that many steps
/// (when `$body` is a loop of `$k` steps, which the compiler then unrolls
/// whole). Nothing for 0; `$other` for a larger count, which the callers
/// rule out.
#[cfg(target_arch = "x86_64")]
macro_rules! by_count {
    ($m:expr, $k:ident => $body:expr, $other:expr) => {
        match $m {
            0 => {}
            1 => {
                const $k: usize = 1;
                $body
            }
            2 => {
                const $k: usize = 2;
                $body
            }
            3 => {
                const $k: usize = 3;
                $body
            }
            4 => {
                const $k: usize = 4;
                $body
            }
            5 => {
                const $k: usize = 5;
                $body
            }
            6 => {
                const $k: usize = 6;
                $body
            }
            7 => {
                const $k: usize = 7;
                $body
            }
            8 => {
                const $k: usize = 8;
                $body
            }
            9 => {
                const $k: usize = 9;
                $body
            }
            10 => {
                const $k: usize = 10;
                $body
            }
            11 => {
                const $k: usize = 11;
                $body
            }
            12 => {
                const $k: usize = 12;
                $body
            }
            13 => {
                const $k: usize = 13;
                $body
            }
            14 => {
                const $k: usize = 14;
                $body
            }
            15 => {
                const $k: usize = 15;
                $body
            }
            _ => $other,
        }
    };
}

// The AVX2 versions below cover a length `n` from 32 bytes this way: up to
// `STRAIGHT_MAX`, the first 32 bytes, then the `m = (n - 1) / 32` steps of
// 32 ending the block, `[n - 32k, n - 32k + 32)` for `k = m` down to 1:
// `n - 32m` lies in [1, 32], so they meet or overlap the first step, and
// none starts before the block. Longer blocks run a loop of four steps
// (128 bytes) over [0, n - 128) and finish with the four steps ending the
// block: each loop step starts below n - 128, so stays inside it. Bytes
// in an overlap are read or written twice; none is skipped.

/// The first offset in `[p, p + n)` not holding `FREE_FILL`, or `None`.
///
/// # Safety
/// - The CPU has AVX2.
/// - `p..p + n` is readable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn first_unfilled_avx2(p: *const u8, n: usize) -> Option<usize> {
    // SAFETY: the caller's promises.
    if unsafe { filled_avx2(p, n) } {
        None
    } else {
        // SAFETY: as above.
        first_unfilled_slow(unsafe { core::slice::from_raw_parts(p, n) })
    }
}

/// Whether the `n` bytes at `p` are all `FREE_FILL`, 32 bytes per load:
/// each load XOR-ed with the fill and OR-ed into one accumulator, tested
/// once.
///
/// # Safety
/// - The CPU has AVX2.
/// - `p..p + n` is readable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn filled_avx2(p: *const u8, n: usize) -> bool {
    use core::arch::x86_64::{
        _mm_loadu_si128, _mm_or_si128, _mm_set1_epi8, _mm_testz_si128, _mm_xor_si128,
        _mm256_loadu_si256, _mm256_or_si256, _mm256_set1_epi8, _mm256_testz_si256,
        _mm256_xor_si256,
    };
    if n < 32 {
        if n < 16 {
            // SAFETY: the caller's range.
            return unsafe { filled_short(p, n) };
        }
        let f = _mm_set1_epi8(FREE_FILL as i8);
        // SAFETY: 16 <= n: both 16-byte loads lie in [p, p + n).
        let x = |at: usize| unsafe { _mm_xor_si128(_mm_loadu_si128(p.add(at).cast()), f) };
        let acc = _mm_or_si128(x(0), x(n - 16));
        return _mm_testz_si128(acc, acc) != 0;
    }
    let f = _mm256_set1_epi8(FREE_FILL as i8);
    // SAFETY: every load below reads [at, at + 32) with at + 32 <= n (the
    // plan above), inside the caller's range.
    let x = |at: usize| unsafe { _mm256_xor_si256(_mm256_loadu_si256(p.add(at).cast()), f) };
    let or = |a, b| _mm256_or_si256(a, b);
    // The loop of the plan above (any length from 128 bytes).
    let long = || {
        let last = n - 128;
        let mut acc = or(or(x(last), x(last + 32)), or(x(last + 64), x(last + 96)));
        let mut at = 0;
        while at < last {
            acc = or(acc, or(or(x(at), x(at + 32)), or(x(at + 64), x(at + 96))));
            at = opaque(at + 128);
        }
        acc
    };
    let acc = if n <= STRAIGHT_MAX {
        let mut acc = x(0);
        by_count!(
            (n - 1) / 32,
            K => {
                for i in 0..K {
                    acc = or(acc, x(n - 32 * (K - i)));
                }
            },
            acc = long()
        );
        acc
    } else {
        long()
    };
    _mm256_testz_si256(acc, acc) != 0
}

/// Writes `byte` over the `n` bytes at `p`, 32 bytes per store (with
/// `memset` over [`FILL_INLINE_MAX`] bytes).
///
/// # Safety
/// - The CPU has AVX2.
/// - `p..p + n` is writable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fill_avx2(p: *mut u8, byte: u8, n: usize) {
    use core::arch::x86_64::{
        _mm_set1_epi8, _mm_storeu_si128, _mm256_set1_epi8, _mm256_storeu_si256,
    };
    if n < 32 {
        if n < 16 {
            // SAFETY: the caller's range.
            unsafe { fill_short(p, byte, n) };
            return;
        }
        let v = _mm_set1_epi8(byte as i8);
        // SAFETY: 16 <= n: both 16-byte stores lie in [p, p + n).
        unsafe {
            _mm_storeu_si128(p.cast(), v);
            _mm_storeu_si128(p.add(n - 16).cast(), v);
        }
        return;
    }
    let v = _mm256_set1_epi8(byte as i8);
    // SAFETY: every store below writes [at, at + 32) with at + 32 <= n
    // (the plan above), inside the caller's range.
    let s = |at: usize| unsafe { _mm256_storeu_si256(p.add(at).cast(), v) };
    // The loop of the plan above (any length from 128 bytes).
    let long = || {
        let last = n - 128;
        let mut at = 0;
        while at < last {
            s(at);
            s(at + 32);
            s(at + 64);
            s(at + 96);
            at = opaque(at + 128);
        }
        s(last);
        s(last + 32);
        s(last + 64);
        s(last + 96);
    };
    if n <= STRAIGHT_MAX {
        s(0);
        by_count!(
            (n - 1) / 32,
            K => {
                for i in 0..K {
                    s(n - 32 * (K - i));
                }
            },
            long()
        );
    } else if n <= FILL_INLINE_MAX {
        long();
    } else {
        // SAFETY: the caller's range.
        unsafe { core::ptr::write_bytes(p, byte, n) };
    }
}

// The SSE2 and word versions below cover a length `n` from 16 bytes in
// steps of `W` bytes (16 or 8) this way: up to 2W, the first and the last
// step; up to 4W, the first two and the last two; longer blocks run a
// loop of four steps over [0, n - 4W) and finish with the four steps
// ending the block (each loop step starts below n - 4W, so stays inside
// it). Bytes in an overlap are read or written twice; none is skipped.

/// Whether the `n` bytes at `p` are all `FREE_FILL`, 16 bytes per load
/// (SSE2, part of the x86-64 baseline): each load compared with the fill
/// and AND-ed into one accumulator, tested once.
///
/// # Safety
/// - `p..p + n` is readable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
unsafe fn filled_sse2(p: *const u8, n: usize) -> bool {
    use core::arch::x86_64::{
        _mm_and_si128, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    if n < 16 {
        // SAFETY: the caller's range.
        return unsafe { filled_short(p, n) };
    }
    let f = _mm_set1_epi8(FREE_FILL as i8);
    // SAFETY: every load below reads [at, at + 16) with at + 16 <= n (the
    // plan above), inside the caller's range.
    let eq = |at: usize| unsafe { _mm_cmpeq_epi8(_mm_loadu_si128(p.add(at).cast()), f) };
    let and = |a, b| _mm_and_si128(a, b);
    let acc = if n <= 32 {
        and(eq(0), eq(n - 16))
    } else if n <= 64 {
        and(and(eq(0), eq(16)), and(eq(n - 32), eq(n - 16)))
    } else {
        let last = n - 64;
        let mut acc = and(
            and(eq(last), eq(last + 16)),
            and(eq(last + 32), eq(last + 48)),
        );
        let mut at = 0;
        while at < last {
            acc = and(
                acc,
                and(and(eq(at), eq(at + 16)), and(eq(at + 32), eq(at + 48))),
            );
            at = opaque(at + 64);
        }
        acc
    };
    _mm_movemask_epi8(acc) == 0xffff
}

/// Writes `byte` over the `n` bytes at `p`, 16 bytes per SSE2 store.
///
/// # Safety
/// - `p..p + n` is writable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
unsafe fn fill_sse2(p: *mut u8, byte: u8, n: usize) {
    use core::arch::x86_64::{_mm_set1_epi8, _mm_storeu_si128};
    if n < 16 {
        // SAFETY: the caller's range.
        unsafe { fill_short(p, byte, n) };
        return;
    }
    let v = _mm_set1_epi8(byte as i8);
    // SAFETY: every store below writes [at, at + 16) with at + 16 <= n
    // (the plan above), inside the caller's range.
    let s = |at: usize| unsafe { _mm_storeu_si128(p.add(at).cast(), v) };
    if n <= 32 {
        s(0);
        s(n - 16);
    } else if n <= 64 {
        s(0);
        s(16);
        s(n - 32);
        s(n - 16);
    } else {
        let last = n - 64;
        let mut at = 0;
        while at < last {
            s(at);
            s(at + 16);
            s(at + 32);
            s(at + 48);
            at = opaque(at + 64);
        }
        s(last);
        s(last + 16);
        s(last + 32);
        s(last + 48);
    }
}

/// Whether the `n` bytes at `p` are all `FREE_FILL`, eight bytes per load
/// (the portable version; on x86-64 only the tests use it).
///
/// # Safety
/// - `p..p + n` is readable.
#[cfg(any(not(target_arch = "x86_64"), test))]
unsafe fn filled_words(p: *const u8, n: usize) -> bool {
    if n < 16 {
        // SAFETY: the caller's range.
        return unsafe { filled_short(p, n) };
    }
    let word = splat(FREE_FILL);
    // SAFETY: every load below reads [at, at + 8) with at + 8 <= n (the
    // plan above with W = 8), inside the caller's range.
    let x = |at: usize| unsafe { p.add(at).cast::<u64>().read_unaligned() } ^ word;
    let acc = if n <= 32 {
        x(0) | x(8) | x(n - 16) | x(n - 8)
    } else {
        let last = n - 32;
        let mut acc = x(last) | x(last + 8) | x(last + 16) | x(last + 24);
        let mut at = 0;
        while at < last {
            acc |= x(at) | x(at + 8) | x(at + 16) | x(at + 24);
            at += 32;
        }
        acc
    };
    acc == 0
}

/// Writes `byte` over the `n` bytes at `p`, eight bytes per store (the
/// portable version; on x86-64 only the tests use it).
///
/// # Safety
/// - `p..p + n` is writable.
#[cfg(any(not(target_arch = "x86_64"), test))]
unsafe fn fill_words(p: *mut u8, byte: u8, n: usize) {
    if n < 16 {
        // SAFETY: the caller's range.
        unsafe { fill_short(p, byte, n) };
        return;
    }
    let word = splat(byte);
    // SAFETY: every store below writes [at, at + 8) with at + 8 <= n (as
    // in `filled_words`), inside the caller's range.
    let s = |at: usize| unsafe { p.add(at).cast::<u64>().write_unaligned(word) };
    let quad = |at: usize| {
        s(at);
        s(at + 8);
        s(at + 16);
        s(at + 24);
    };
    if n <= 32 {
        s(0);
        s(8);
        s(n - 16);
        s(n - 8);
    } else {
        let last = n - 32;
        let mut at = 0;
        while at < last {
            quad(at);
            at += 32;
        }
        quad(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Longest length the variant tests cover (past 1024, where the old
    /// scan changed strategy, and several loop steps of every width).
    const MAX: usize = 1100;
    /// Start offsets of the tested ranges inside their buffer (aligned,
    /// odd, and just short of a 32-byte boundary).
    const OFFSETS: [usize; 4] = [0, 1, 17, 31];

    type Filled = fn(*const u8, usize) -> bool;
    type Fill = fn(*mut u8, u8, usize);
    type Search = fn(&[u8]) -> Option<usize>;

    /// Every version of the clean-block check this CPU can run, by name.
    /// (The tests pass ranges inside their buffers; every `unsafe` below
    /// relies on that, and on the CPU having AVX2 where it says so.)
    fn checks() -> Vec<(&'static str, Filled)> {
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut v: Vec<(&'static str, Filled)> = vec![
            ("dispatch", |p, n| {
                // SAFETY: a range of the test's buffer.
                first_unfilled(unsafe { core::slice::from_raw_parts(p, n) }).is_none()
            }),
            // SAFETY: as above.
            ("words", |p, n| unsafe { filled_words(p, n) }),
        ];
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: as above.
            v.push(("sse2", |p, n| unsafe { filled_sse2(p, n) }));
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: as above; the CPU has AVX2.
                v.push(("avx2", |p, n| unsafe { filled_avx2(p, n) }));
                // SAFETY: as above.
                v.push(("avx2 search", |p, n| unsafe {
                    first_unfilled_avx2(p, n).is_none()
                }));
            }
        }
        v
    }

    /// Every version of the fill this CPU can run, by name (the same
    /// promises as in [`checks`]).
    fn fills() -> Vec<(&'static str, Fill)> {
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut v: Vec<(&'static str, Fill)> = vec![
            // SAFETY: a range of the test's buffer.
            ("dispatch", |p, b, n| unsafe { fill_bytes(p, b, n) }),
            // SAFETY: as above.
            ("words", |p, b, n| unsafe { fill_words(p, b, n) }),
        ];
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: as above.
            v.push(("sse2", |p, b, n| unsafe { fill_sse2(p, b, n) }));
            // SAFETY: as above.
            v.push(("other", |p, b, n| unsafe { fill_other(p, b, n) }));
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: as above; the CPU has AVX2.
                v.push(("avx2", |p, b, n| unsafe { fill_avx2(p, b, n) }));
            }
        }
        v
    }

    /// The positions tried in a block of `n` bytes: both ends, the
    /// middle, and the bytes on either side of each vector boundary near
    /// the ends (where head, loop and overlapping tail loads meet).
    fn positions(n: usize) -> Vec<usize> {
        let mut v = vec![0, 1, n / 2, n.wrapping_sub(2), n.wrapping_sub(1)];
        for w in [8, 16, 32, 64, 128] {
            v.extend([w - 1, w, n.wrapping_sub(w), n.wrapping_sub(w + 1)]);
        }
        v.retain(|&p| p < n);
        v.sort_unstable();
        v.dedup();
        v
    }

    #[test]
    fn first_unfilled_finds_any_byte() {
        let mut buf = [FREE_FILL; 700];
        for n in 0..buf.len() {
            assert_eq!(first_unfilled(&buf[..n]), None, "clean {n}");
            for pos in 0..n {
                buf[pos] = 0;
                assert_eq!(first_unfilled(&buf[..n]), Some(pos), "{n} {pos}");
                if pos + 1 < n {
                    buf[n - 1] = 1;
                    assert_eq!(first_unfilled(&buf[..n]), Some(pos), "{n} {pos} +last");
                    buf[n - 1] = FREE_FILL;
                }
                buf[pos] = FREE_FILL;
            }
        }
    }

    /// Every version of the search this CPU can run, by name.
    fn searches() -> Vec<(&'static str, Search)> {
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut v: Vec<(&'static str, Search)> = vec![
            ("dispatch", first_unfilled),
            ("words", first_unfilled_words),
        ];
        #[cfg(target_arch = "x86_64")]
        {
            v.push(("sse2", first_unfilled_sse2));
            v.push(("other", first_unfilled_other));
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2; the range is the slice.
                v.push(("avx2", |b| unsafe {
                    first_unfilled_avx2(b.as_ptr(), b.len())
                }));
            }
        }
        v
    }

    /// Every search, every length up to `MAX` at every start offset,
    /// reports the first changed byte (with another changed byte at the
    /// end), at the tried positions.
    #[test]
    fn every_search_finds_the_first_changed_byte() {
        let mut buf = vec![FREE_FILL; MAX + 64];
        for (name, search) in searches() {
            for n in 0..=MAX {
                for off in OFFSETS {
                    let b = &mut buf[off..off + n];
                    assert_eq!(search(b), None, "{name}: clean {n} @{off}");
                    for pos in positions(n) {
                        b[pos] = FREE_FILL ^ 0x80;
                        assert_eq!(search(b), Some(pos), "{name}: {n} @{off} {pos}");
                        b[n - 1] = 0;
                        assert_eq!(search(b), Some(pos), "{name}: {n} @{off} {pos} +last");
                        b[n - 1] = FREE_FILL;
                        b[pos] = FREE_FILL;
                    }
                }
            }
        }
    }

    /// Every length up to `MAX` at every start offset: a clean block is
    /// clean (with non-fill bytes on both sides: nothing outside is read),
    /// and each single byte changed at the tried positions, to values one
    /// bit or all bits away from the fill, is seen.
    #[test]
    fn every_check_sees_every_changed_byte() {
        let mut buf = vec![0u8; MAX + 64];
        for (name, filled) in checks() {
            for n in 0..=MAX {
                for off in OFFSETS {
                    buf.fill(0);
                    buf[off..off + n].fill(FREE_FILL);
                    let p = buf[off..].as_ptr();
                    assert!(filled(p, n), "{name}: clean {n} @{off}");
                    for pos in positions(n) {
                        for v in [0, FREE_FILL ^ 1, FREE_FILL ^ 0x80, !FREE_FILL] {
                            buf[off + pos] = v;
                            let p = buf[off..].as_ptr();
                            assert!(!filled(p, n), "{name}: {n} @{off} {pos}={v:#x}");
                        }
                        buf[off + pos] = FREE_FILL;
                    }
                }
            }
        }
    }

    /// Short blocks, where the overlapping loads are most varied: every
    /// position of every length.
    #[test]
    fn every_check_sees_every_position_of_short_blocks() {
        let mut buf = vec![FREE_FILL; 300];
        for (name, filled) in checks() {
            for n in 0..=260 {
                for pos in 0..n {
                    buf[pos + 3] = 0;
                    assert!(!filled(buf[3..].as_ptr(), n), "{name}: {n} {pos}");
                    buf[pos + 3] = FREE_FILL;
                }
            }
        }
    }

    /// Every fill writes exactly its range, at every length up to `MAX`
    /// (and past the length handed to `memset`) and start offset.
    #[test]
    fn every_fill_writes_exactly_its_range() {
        let longest = FILL_INLINE_MAX + 200;
        let mut buf = vec![0u8; longest + 64];
        for (name, fill) in fills() {
            let lens = (0..=MAX).chain((FILL_INLINE_MAX - 130..longest).step_by(7));
            for n in lens {
                for off in OFFSETS {
                    let end = off + n + 33;
                    buf[..end].fill(0x11);
                    fill(buf[off..].as_mut_ptr(), FREE_FILL, n);
                    let bad = buf[..end].iter().enumerate().position(|(i, &b)| {
                        b != if (off..off + n).contains(&i) {
                            FREE_FILL
                        } else {
                            0x11
                        }
                    });
                    assert_eq!(bad, None, "{name}: {n} @{off}");
                }
            }
        }
    }
}
