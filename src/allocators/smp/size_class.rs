//! Size classes of the smp allocator.
//!
//! Every small, medium and large request is rounded up to one of
//! [`NCLASSES`]` - 1` block sizes; a page holds blocks of one class only.
//! Classes 1..=4 are 16, 32, 48 and 64 bytes; above 64 bytes each doubling
//! `(2^k, 2^(k+1)]` is split into 8 equal steps of `2^(k-3)`, so a block is
//! never more than 12.5% larger than a request above 64 bytes. The largest
//! class is [`LARGE_MAX`]; bigger requests are "huge" and mapped directly.
//!
//! Every power of two from 16 up is a class, and every class is a multiple
//! of 8 (a multiple of 16 when the request is), so alignment requests are
//! met by choosing a class whose size is a multiple of the alignment: block
//! areas of pages are aligned at least as much as their largest power-of-two
//! class (see `segment.rs`).

/// Number of class indices (index 0 is unused).
pub(crate) const NCLASSES: usize = 109;
/// Largest block of a small page (64 KiB pages).
pub(crate) const SMALL_MAX: usize = 8 << 10;
/// Largest block of a medium page (512 KiB pages).
pub(crate) const MEDIUM_MAX: usize = 128 << 10;
/// Largest block served from segments (large pages: one per segment).
pub(crate) const LARGE_MAX: usize = 512 << 10;
/// Requests up to this size use the lookup table.
pub(crate) const TABLE_MAX: usize = 8192;

/// Block size of each class (index 0: 0).
pub static CLASS_SIZE: [usize; NCLASSES] = build_sizes();
/// Class of `(size + 7) / 8` for sizes up to `TABLE_MAX`; entry 0 (size 0)
/// is class 0, which never has pages, so that a zero-length request fails
/// on the slow path instead of costing a test on the fast one.
static CLASS_TABLE: [u8; TABLE_MAX / 8 + 1] = build_table();

const fn compute_class(size: usize) -> usize {
    if size <= 64 {
        return if size == 0 { 1 } else { size.div_ceil(16) };
    }
    let k = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize;
    let j = ((size - 1 - (1 << k)) >> (k - 3)) + 1;
    4 + (k - 6) * 8 + j
}

pub(crate) const fn build_sizes() -> [usize; NCLASSES] {
    let mut t = [0usize; NCLASSES];
    let mut i = 1;
    while i <= 4 {
        t[i] = i * 16;
        i += 1;
    }
    while i < NCLASSES {
        let k = (i - 5) / 8 + 6;
        let j = (i - 5) % 8 + 1;
        t[i] = (1 << k) + j * (1 << (k - 3));
        i += 1;
    }
    t
}

const fn build_table() -> [u8; TABLE_MAX / 8 + 1] {
    let mut t = [0u8; TABLE_MAX / 8 + 1];
    let mut i = 1;
    while i <= TABLE_MAX / 8 {
        t[i] = compute_class(i * 8) as u8;
        i += 1;
    }
    t
}

/// Block size of class `c` (`c < NCLASSES`), without a bounds check.
#[inline(always)]
pub fn class_size(c: usize) -> usize {
    debug_assert!(c < NCLASSES);
    // SAFETY: classes are computed below NCLASSES.
    unsafe { *CLASS_SIZE.get_unchecked(c) }
}

/// The class of a request of `size` bytes (`0 < size <= LARGE_MAX`) whose
/// alignment is at most 8 bytes.
#[inline]
pub fn class_of(size: usize) -> usize {
    debug_assert!(size > 0 && size <= LARGE_MAX);
    if size <= TABLE_MAX {
        // SAFETY: size <= TABLE_MAX, so the index is within the table.
        unsafe { *CLASS_TABLE.get_unchecked(size.div_ceil(8)) as usize }
    } else {
        compute_class(size)
    }
}

/// The class of a request of `size <= TABLE_MAX` bytes aligned to at most
/// 16 bytes (`align_log2 <= 4`); class 0 (no pages, so allocation fails)
/// for `size == 0`.
#[inline(always)]
pub fn class_small(size: usize, align_log2: u8) -> usize {
    debug_assert!(size <= TABLE_MAX && align_log2 <= 4);
    let i = if align_log2 == 4 {
        // Rounding to 16 makes the class a multiple of 16.
        ((size + 15) >> 4) << 1
    } else {
        (size + 7) >> 3
    };
    // SAFETY: size <= TABLE_MAX, a multiple of 16, so i <= TABLE_MAX / 8.
    unsafe { *CLASS_TABLE.get_unchecked(i) as usize }
}

/// Class of a `malloc` of `16 * i - 15 ..= 16 * i` bytes (16-byte aligned),
/// for sizes up to `TABLE_MAX`; entry 0 (`malloc(0)`) is the 16-byte class.
static MALLOC_TABLE: [u8; TABLE_MAX / 16 + 1] = build_malloc_table();

const fn build_malloc_table() -> [u8; TABLE_MAX / 16 + 1] {
    let mut t = [0u8; TABLE_MAX / 16 + 1];
    let mut i = 0;
    while i <= TABLE_MAX / 16 {
        t[i] = compute_class(if i == 0 { 16 } else { i * 16 }) as u8;
        i += 1;
    }
    t
}

/// The class of a `malloc` of `size <= TABLE_MAX` bytes: 16-byte aligned,
/// and `malloc(0)` gets the smallest block (one lookup, no other test).
#[inline(always)]
pub fn class_malloc(size: usize) -> usize {
    debug_assert!(size <= TABLE_MAX);
    // SAFETY: size <= TABLE_MAX, so the index is within the table.
    unsafe { *MALLOC_TABLE.get_unchecked((size + 15) >> 4) as usize }
}

/// The class for `size` bytes aligned to `1 << align_log2`, or `None` when
/// the request must be served as a huge block.
#[inline]
pub fn class_for(size: usize, align_log2: u8) -> Option<usize> {
    if size > LARGE_MAX {
        return None;
    }
    if align_log2 <= 3 {
        // Every class is a multiple of 8.
        return Some(class_of(size));
    }
    if align_log2 == 4 {
        // Rounding to 16 makes the class a multiple of 16.
        return Some(class_of((size + 15) & !15));
    }
    let align = 1usize << align_log2;
    if align > LARGE_MAX {
        return None;
    }
    let c = class_of(size.max(align));
    if let Some(next) = ALIGNED_NEXT.get(align_log2 as usize - 5) {
        // SAFETY: c < NCLASSES.
        return Some(unsafe { *next.get_unchecked(c) } as usize);
    }
    // Alignments above the table's: the walk the table was built with.
    Some(next_aligned(&CLASS_SIZE, c, align))
}

/// The first class from `c` on whose size (in `sizes`) is a multiple of
/// `align` (a power of two up to [`LARGE_MAX`], itself a class, so the walk
/// ends there).
const fn next_aligned(sizes: &[usize; NCLASSES], c: usize, align: usize) -> usize {
    let mut c = c;
    while c < NCLASSES - 1 && !sizes[c].is_multiple_of(align) {
        c += 1;
    }
    c
}

/// `ALIGNED_NEXT[a - 5][c]`: [`next_aligned`]`(sizes, c, 1 << a)` for the
/// alignments of 32 B to 4 KiB, so that `posix_memalign` and the C++
/// aligned `new` find their class by one lookup after `class_of`, not by a
/// walk over the classes (36 instructions a call for 64-byte alignment).
static ALIGNED_NEXT: [[u8; NCLASSES]; 8] = build_aligned_next();

const fn build_aligned_next() -> [[u8; NCLASSES]; 8] {
    let sizes = build_sizes();
    let mut t = [[0u8; NCLASSES]; 8];
    let mut a = 0;
    while a < 8 {
        let mut c = 0;
        while c < NCLASSES {
            t[a][c] = next_aligned(&sizes, c, 32 << a) as u8;
            c += 1;
        }
        a += 1;
    }
    t
}

/// Page kind serving a class: 0 small, 1 medium, 2 large.
#[inline]
pub fn kind_of(class: usize) -> usize {
    let s = CLASS_SIZE[class];
    if s <= SMALL_MAX {
        0
    } else if s <= MEDIUM_MAX {
        1
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_classes_are_the_first_multiples_of_the_alignment() {
        for a in 5..=LARGE_MAX.trailing_zeros() as u8 {
            let align = 1usize << a;
            let edges = [1, align - 1, align, align + 1];
            for size in (1..=LARGE_MAX)
                .step_by(97)
                .chain(edges)
                .filter(|&s| s <= LARGE_MAX)
            {
                let c = class_for(size, a).unwrap();
                assert!(
                    class_size(c) >= size && class_size(c).is_multiple_of(align),
                    "{size} {a}"
                );
                // No smaller class would do.
                for d in 1..c {
                    assert!(
                        class_size(d) < size.max(align) || !class_size(d).is_multiple_of(align),
                        "{size} {a}: class {d} fits before {c}"
                    );
                }
            }
        }
    }

    #[test]
    fn sizes_are_increasing_and_end_at_large_max() {
        for c in 2..NCLASSES {
            assert!(CLASS_SIZE[c] > CLASS_SIZE[c - 1]);
            assert_eq!(CLASS_SIZE[c] % 8, 0);
        }
        assert_eq!(CLASS_SIZE[NCLASSES - 1], LARGE_MAX);
    }

    #[test]
    fn class_of_is_smallest_fitting_class() {
        for size in 1..=70_000usize {
            let c = class_of(size);
            assert!(CLASS_SIZE[c] >= size, "size {size}");
            assert!(c == 1 || CLASS_SIZE[c - 1] < size, "size {size}");
        }
        for shift in 17..=19 {
            for size in [(1usize << shift) - 1, 1 << shift, (1 << shift) + 1] {
                let c = class_of(size.min(LARGE_MAX));
                assert!(CLASS_SIZE[c] >= size.min(LARGE_MAX));
                assert!(CLASS_SIZE[c - 1] < size.min(LARGE_MAX));
            }
        }
    }

    #[test]
    fn waste_is_at_most_one_eighth_above_64() {
        let mut size = 65;
        while size <= LARGE_MAX {
            let b = CLASS_SIZE[class_of(size)];
            assert!((b - size) * 8 <= size, "size {size} block {b}");
            size += if size < 4096 { 1 } else { 61 };
        }
    }

    #[test]
    fn class_small_agrees_with_class_for() {
        for size in 1..=TABLE_MAX {
            for a in 0..=4u8 {
                assert_eq!(Some(class_small(size, a)), class_for(size, a), "{size} {a}");
            }
        }
        for a in 0..=4u8 {
            assert_eq!(class_small(0, a), 0);
        }
    }

    #[test]
    fn class_malloc_agrees_with_class_for() {
        for size in 1..=TABLE_MAX {
            assert_eq!(Some(class_malloc(size)), class_for(size, 4), "{size}");
        }
        assert_eq!(class_malloc(0), class_for(1, 4).unwrap());
    }

    #[test]
    fn powers_of_two_are_classes() {
        let mut p = 16;
        while p <= LARGE_MAX {
            assert_eq!(CLASS_SIZE[class_of(p)], p);
            p *= 2;
        }
    }

    #[test]
    fn aligned_classes_are_multiples_of_the_alignment() {
        for align_log2 in 0..=19u8 {
            for size in [1usize, 7, 16, 33, 100, 1000, 5000, 70_000, 300_000] {
                if let Some(c) = class_for(size, align_log2) {
                    assert!(CLASS_SIZE[c] >= size);
                    assert_eq!(CLASS_SIZE[c] % (1 << align_log2), 0);
                }
            }
        }
        assert_eq!(class_for(LARGE_MAX + 1, 0), None);
        assert_eq!(class_for(8, 20), None);
    }
}
