//! Log2 alignment arithmetic.
//!
//! The C ABI passes alignments as `la_alignment`, the base-2 logarithm of the
//! alignment in bytes (0 = 1 byte, 4 = 16 bytes, 12 = 4096 bytes), exactly as
//! Zig's `std.mem.Alignment`. Every allocator turns it into bytes and rounds
//! addresses and lengths here, with overflow checked, so that no allocator
//! re-derives this arithmetic on its own.

/// The largest log2 alignment that can be expressed in a `usize`.
pub const MAX_LOG2: u8 = (usize::BITS - 1) as u8;

/// Alignment in bytes for a log2 alignment, or `None` when `1 << log2`
/// does not fit in a `usize` (log2 of 64 or more on 64-bit targets).
#[inline]
pub const fn to_bytes(log2: u8) -> Option<usize> {
    if log2 > MAX_LOG2 {
        None
    } else {
        Some(1usize << log2)
    }
}

/// Log2 of a power-of-two byte alignment, or `None` when `bytes` is not a
/// power of two (zero included).
#[inline]
pub const fn from_bytes(bytes: usize) -> Option<u8> {
    if bytes.is_power_of_two() {
        Some(bytes.trailing_zeros() as u8)
    } else {
        None
    }
}

/// Rounds `value` up to a multiple of the power of two `align`, or `None` on
/// overflow.
#[inline]
pub const fn forward(value: usize, align: usize) -> Option<usize> {
    debug_assert!(align.is_power_of_two());
    match value.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Rounds `value` down to a multiple of the power of two `align`.
#[inline]
pub const fn backward(value: usize, align: usize) -> usize {
    debug_assert!(align.is_power_of_two());
    value & !(align - 1)
}

/// Whether `value` is a multiple of the power of two `align`.
#[inline]
pub const fn is_aligned(value: usize, align: usize) -> bool {
    debug_assert!(align.is_power_of_two());
    value & (align - 1) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip() {
        for log2 in 0..=MAX_LOG2 {
            let b = to_bytes(log2).unwrap();
            assert_eq!(from_bytes(b), Some(log2));
        }
        assert_eq!(to_bytes(64), None);
        assert_eq!(to_bytes(255), None);
        assert_eq!(from_bytes(0), None);
        assert_eq!(from_bytes(12), None);
    }

    #[test]
    fn rounding() {
        assert_eq!(forward(0, 16), Some(0));
        assert_eq!(forward(1, 16), Some(16));
        assert_eq!(forward(16, 16), Some(16));
        assert_eq!(forward(usize::MAX, 16), None);
        assert_eq!(forward(usize::MAX - 15, 16), Some(usize::MAX - 15));
        assert_eq!(backward(31, 16), 16);
        assert!(is_aligned(4096, 4096));
        assert!(!is_aligned(4097, 4096));
    }
}
