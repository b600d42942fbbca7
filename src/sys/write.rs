//! Allocation-free text output: the crate's one writer, over a stack
//! buffer, for reports, logs and statistics.
//!
//! A [`Writer`] formats strings, integers, hexadecimal addresses,
//! fixed-point decimals and byte sizes with its own methods, and anything
//! else through `core::fmt::Write` (`write!` with integers and strings never
//! allocates). Full buffers go to a sink: `write(2)` on a file descriptor
//! ([`super::fd::write_all`]: `EINTR` and short writes retried), or a C
//! `FILE *` (`malloc_info`). Nothing here allocates, panics or locks, so it
//! may run inside `malloc`, from a fatal-error path or at process exit.
//! Output that does not fit the buffer is flushed in pieces; a buffer that
//! holds a whole line writes it with one call, so lines from several
//! threads do not interleave. Write errors are ignored (there is nowhere to
//! report them).

use core::ffi::c_void;
use core::fmt;
use core::mem::MaybeUninit;
use core::ptr;

/// Where a [`Writer`] sends its bytes.
#[derive(Clone, Copy)]
pub enum Sink {
    /// A file descriptor, written with `write(2)` (retrying on EINTR and
    /// short writes).
    Fd(i32),
    /// A C stdio stream (`malloc_info`), written with `fwrite`.
    File(*mut libc::FILE),
}

/// The buffer size of a [`Writer`] made by [`Writer::fd`] or
/// [`Writer::file`].
const CAP: usize = 512;

/// A formatting buffer of `N` bytes on the stack. Call [`Writer::flush`]
/// (or drop it) to emit what is buffered. The buffer starts uninitialised:
/// only the `len` bytes written so far are ever read (zeroing a profile
/// dump's 4 KiB buffer cost each dump more than writing a small one).
pub struct Writer<const N: usize = CAP> {
    buf: [MaybeUninit<u8>; N],
    len: usize,
    sink: Sink,
}

impl Writer {
    /// A writer to file descriptor `fd`.
    pub const fn fd(fd: i32) -> Self {
        Writer::<CAP>::fd_sized(fd)
    }

    /// A writer to a stdio stream.
    pub const fn file(f: *mut libc::FILE) -> Self {
        Writer {
            buf: [const { MaybeUninit::uninit() }; CAP],
            len: 0,
            sink: Sink::File(f),
        }
    }
}

impl<const N: usize> Writer<N> {
    /// A writer to file descriptor `fd` with an `N`-byte buffer (for long
    /// output: fewer `write` calls).
    pub const fn fd_sized(fd: i32) -> Self {
        Writer {
            buf: [const { MaybeUninit::uninit() }; N],
            len: 0,
            sink: Sink::Fd(fd),
        }
    }

    /// Emits the buffered bytes.
    pub fn flush(&mut self) {
        let bytes = self.written();
        match self.sink {
            Sink::Fd(fd) => {
                super::fd::write_all(fd, bytes);
            }
            Sink::File(f) => {
                // SAFETY: f is the caller's open stream; bytes is valid.
                unsafe { libc::fwrite(bytes.as_ptr().cast::<c_void>(), 1, bytes.len(), f) };
            }
        }
        self.len = 0;
    }

    /// The bytes buffered so far.
    fn written(&self) -> &[u8] {
        debug_assert!(self.len <= N);
        // SAFETY: the first `len` bytes of `buf` were written (`len` only
        // grows over bytes just written).
        unsafe { core::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), self.len) }
    }

    /// Where the next byte goes (`len` may be `N`: the end).
    fn at(&mut self) -> *mut u8 {
        debug_assert!(self.len <= N);
        // SAFETY: len <= N, inside `buf` or one past its end.
        unsafe { self.buf.as_mut_ptr().add(self.len).cast::<u8>() }
    }

    /// Appends raw bytes.
    #[inline]
    pub fn bytes(&mut self, s: &[u8]) -> &mut Self {
        if self.len + s.len() <= N {
            // The common case: it fits (a constant-length copy once
            // inlined, as every `str(" ")` is).
            // SAFETY: s.len() bytes from `len` lie inside `buf`, which `s`
            // (a shared borrow) cannot overlap.
            unsafe { ptr::copy_nonoverlapping(s.as_ptr(), self.at(), s.len()) };
            self.len += s.len();
            return self;
        }
        self.bytes_in_pieces(s)
    }

    /// [`Writer::bytes`] of what does not fit the buffer as it is.
    #[cold]
    #[inline(never)]
    fn bytes_in_pieces(&mut self, s: &[u8]) -> &mut Self {
        for chunk in s.chunks(N) {
            if self.len + chunk.len() > N {
                self.flush();
            }
            // SAFETY: chunk.len() <= N bytes fit from `len` (flushed when
            // they did not).
            unsafe { ptr::copy_nonoverlapping(chunk.as_ptr(), self.at(), chunk.len()) };
            self.len += chunk.len();
        }
        self
    }

    /// Appends a string.
    #[inline]
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Appends `n` copies of `c`.
    pub fn repeat(&mut self, c: u8, n: usize) -> &mut Self {
        for _ in 0..n {
            self.bytes(&[c]);
        }
        self
    }

    /// Appends `n` (at most 20) bytes that `put` writes, through a copy
    /// (the numbers' way when the buffer has no room for 20 bytes).
    #[inline]
    fn put(&mut self, n: usize, put: impl FnOnce(&mut [u8])) -> &mut Self {
        debug_assert!(n <= 20);
        let mut tmp = [0u8; 20];
        put(&mut tmp[..n]);
        self.bytes(&tmp[..n])
    }

    /// Appends an unsigned decimal number.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        if self.len + 20 <= N {
            // SAFETY: 20 bytes from `len` lie inside `buf`.
            let n = unsafe { put_decimal_at(v, self.at()) };
            self.len += n;
            return self;
        }
        self.put(digits(v), |out| put_decimal(v, out))
    }

    /// Appends an unsigned decimal number right-aligned in `width` columns.
    pub fn u64_w(&mut self, v: u64, width: usize) -> &mut Self {
        self.repeat(b' ', width.saturating_sub(digits(v)));
        self.u64(v)
    }

    /// Appends a signed decimal number.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        if v < 0 {
            self.bytes(b"-");
        }
        self.u64(v.unsigned_abs())
    }

    /// Appends `0x` and the lowercase hexadecimal digits of `v`.
    pub fn hex(&mut self, v: usize) -> &mut Self {
        // Digits of v, at least one.
        let n = ((usize::BITS - (v | 1).leading_zeros()) as usize).div_ceil(4);
        if N >= 18 {
            // Straight into the buffer (a report writes a code address for
            // every frame of every trace): all 18 bytes of `0x` and 16
            // digits, the value shifted so that its first digit comes first;
            // the length counts only the `0x` and its `n` digits, and the
            // rest is written over next.
            if self.len + 18 > N {
                self.flush();
            }
            let top = (v as u64) << (4 * (16 - n));
            let mut w = [0u8; 18];
            w[..2].copy_from_slice(b"0x");
            w[2..10].copy_from_slice(&hex8((top >> 32) as u32));
            w[10..].copy_from_slice(&hex8(top as u32));
            // SAFETY: 18 bytes from `len` lie inside `buf` (flushed above
            // when they did not).
            unsafe { ptr::copy_nonoverlapping(w.as_ptr(), self.at(), 18) };
            self.len += 2 + n;
            return self;
        }
        // All 16 digits at once, eight per word (a report writes a code
        // address for every frame of every trace).
        let mut buf = [0u8; 18];
        buf[2..10].copy_from_slice(&hex8((v as u64 >> 32) as u32));
        buf[10..18].copy_from_slice(&hex8(v as u32));
        buf[16 - n] = b'0';
        buf[17 - n] = b'x';
        self.bytes(&buf[16 - n..])
    }

    /// Appends a non-negative decimal with `places` digits after the point
    /// (rounded half up; negative, NaN and huge values are clamped).
    pub fn fixed(&mut self, v: f64, places: u32) -> &mut Self {
        let scale = 10u64.pow(places.min(9));
        let v = if v.is_finite() && v > 0.0 { v } else { 0.0 };
        let scaled = (v * scale as f64 + 0.5).min(u64::MAX as f64 / 2.0) as u64;
        self.u64(scaled / scale);
        if places > 0 {
            let frac = scaled % scale;
            self.bytes(b".");
            self.repeat(b'0', (places as usize).saturating_sub(digits(frac)));
            self.u64(frac);
        }
        self
    }

    /// Appends a byte count in a short human form: `812 B`, `12.5 KiB`,
    /// `3.0 MiB`, `1.2 GiB`.
    pub fn size(&mut self, v: u64) -> &mut Self {
        const UNITS: [&str; 4] = [" KiB", " MiB", " GiB", " TiB"];
        if v < 1024 {
            return self.u64(v).str(" B");
        }
        let mut x = v as f64 / 1024.0;
        let mut u = 0;
        while x >= 1024.0 && u + 1 < UNITS.len() {
            x /= 1024.0;
            u += 1;
        }
        self.fixed(x, 1).str(UNITS[u])
    }
}

impl<const N: usize> fmt::Write for Writer<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.str(s);
        Ok(())
    }
}

impl<const N: usize> Drop for Writer<N> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The eight lowercase hexadecimal digits of `h`, most significant first:
/// each nibble spread into a byte of its own, then turned into its digit
/// (`'0' + d`, plus 39 more from `a` on) in all eight bytes at once.
#[inline]
fn hex8(h: u32) -> [u8; 8] {
    let mut t = u64::from(h);
    t = (t | t << 16) & 0x0000_ffff_0000_ffff;
    t = (t | t << 8) & 0x00ff_00ff_00ff_00ff;
    t = (t | t << 4) & 0x0f0f_0f0f_0f0f_0f0f;
    // Byte i holds nibble i; the most significant digit goes first.
    let letters = ((t + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (t + 0x3030_3030_3030_3030 + letters * 39)
        .swap_bytes()
        .to_le_bytes()
}

/// "00" to "99", for writing decimals two digits at a time.
const PAIRS: &[u8; 200] = b"00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

/// Writes the decimal digits of `v` into `out`, which holds exactly
/// [`digits`]`(v)` bytes: two digits per division, from the end.
#[inline]
fn put_decimal(v: u64, out: &mut [u8]) {
    let mut x = v;
    let mut i = out.len();
    while i >= 2 {
        let pair = (x % 100) as usize * 2;
        x /= 100;
        out[i - 2..i].copy_from_slice(&PAIRS[pair..pair + 2]);
        i -= 2;
    }
    if i == 1 {
        out[0] = b'0' + x as u8;
    }
}

/// [`put_decimal`] through a pointer: writes the [`digits`]`(v)` decimal
/// digits of `v` to the bytes just before `end`.
///
/// # Safety
/// The [`digits`]`(v)` bytes before `end` are writable.
#[inline(always)]
unsafe fn put_decimal_before(v: u64, end: *mut u8) {
    let mut x = v;
    let mut e = end;
    while x >= 100 {
        let pair = (x % 100) as usize * 2;
        x /= 100;
        // SAFETY: caller's promise: each pair lies inside the digits.
        unsafe {
            e = e.sub(2);
            core::ptr::copy_nonoverlapping(PAIRS.as_ptr().add(pair), e, 2);
        }
    }
    // SAFETY: as above, for the last one or two digits.
    unsafe {
        if x >= 10 {
            core::ptr::copy_nonoverlapping(PAIRS.as_ptr().add(x as usize * 2), e.sub(2), 2);
        } else {
            *e.sub(1) = b'0' + x as u8;
        }
    }
}

/// The eight decimal digits of `v` (below 10^8, leading zeros
/// included) as byte values 0 to 9, the first digit in the lowest byte:
/// without a loop or a table, by splitting lanes of one word. `v` is cut
/// into two 4-digit halves (32-bit lanes), each lane into two 2-digit
/// ones (16-bit lanes, a division by 100 as a multiplication and a
/// shift, exact below 43,699), and each of those into two digits (8-bit
/// lanes, a division by 10 as `* 103 >> 10`, exact below 179). No
/// product leaves its lane, so one multiplication serves all lanes.
#[inline(always)]
fn eight_digits(v: u32) -> u64 {
    debug_assert!(v < 100_000_000);
    let x = u64::from(v / 10_000) | (u64::from(v % 10_000) << 32);
    let hundreds = ((x * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let x = hundreds | ((x - hundreds * 100) << 16);
    let tens = ((x * 103) >> 10) & 0x000f_000f_000f_000f;
    tens | ((x - tens * 10) << 8)
}

/// `'0'` in every byte of a word.
const ZEROS: u64 = 0x3030_3030_3030_3030;

/// [`put_eight_at`] for `v` below 10^4 (most numbers the shim writes:
/// counts, times, ids), in half the steps: one 4-byte store.
///
/// # Safety
/// The 4 bytes from `at` are writable.
#[inline(always)]
unsafe fn put_four_at(v: u32, at: *mut u8) -> usize {
    debug_assert!(v < 10_000);
    let hundreds = (v * 5_243) >> 19;
    let x = hundreds | ((v - hundreds * 100) << 16);
    let tens = ((x * 103) >> 10) & 0x000f_000f;
    let d = tens | ((x - tens * 10) << 8);
    let zeros = ((d | (1 << 24)).trailing_zeros() / 8) as usize;
    // SAFETY: caller's promise.
    unsafe {
        at.cast::<u32>()
            .write_unaligned(((d + ZEROS as u32) >> (8 * zeros)).to_le())
    };
    4 - zeros
}

/// Writes the decimal digits of `v` (below 10^8) at `at` with one 8-byte
/// store, the leading zeros shifted out, and returns how many there are.
///
/// # Safety
/// The 8 bytes from `at` are writable.
#[inline(always)]
unsafe fn put_eight_at(v: u32, at: *mut u8) -> usize {
    let d = eight_digits(v);
    // Leading zero digits are the low zero bytes; the top byte (the last
    // digit) always counts, so `0` writes "0".
    let zeros = ((d | (1 << 56)).trailing_zeros() / 8) as usize;
    // SAFETY: caller's promise.
    unsafe {
        at.cast::<u64>()
            .write_unaligned(((d + ZEROS) >> (8 * zeros)).to_le())
    };
    8 - zeros
}

/// Writes the decimal digits of `v` at `at` and returns how many there
/// are: one 8-byte store below 10^8, two below 10^16, else
/// [`put_decimal_before`]. Bytes past the digits, up to 20 from `at`, may
/// be overwritten.
///
/// # Safety
/// The 20 bytes from `at` are writable.
#[inline(always)]
unsafe fn put_decimal_at(v: u64, at: *mut u8) -> usize {
    if v < 10_000 {
        // SAFETY: caller's promise.
        return unsafe { put_four_at(v as u32, at) };
    }
    if v < 100_000_000 {
        // SAFETY: caller's promise.
        return unsafe { put_eight_at(v as u32, at) };
    }
    if v < 10_000_000_000_000_000 {
        // SAFETY: caller's promise: the high part takes at most 8 bytes,
        // and the low eight digits follow it (16 bytes at most in all).
        unsafe {
            let n = put_eight_at((v / 100_000_000) as u32, at);
            let low = eight_digits((v % 100_000_000) as u32) + ZEROS;
            at.add(n).cast::<u64>().write_unaligned(low.to_le());
            return n + 8;
        }
    }
    // SAFETY: caller's promise.
    unsafe { put_decimal_long(v, at) }
}

/// [`put_decimal_at`] of 17 digits or more (out of line: rare).
///
/// # Safety
/// As for [`put_decimal_at`].
#[inline(never)]
#[cold]
unsafe fn put_decimal_long(v: u64, at: *mut u8) -> usize {
    let n = digits(v);
    // SAFETY: caller's promise: n <= 20 bytes from `at`.
    unsafe { put_decimal_before(v, at.add(n)) };
    n
}

/// How many decimal digits `v` has (at least one): from its bit length
/// (`bits * 1233 >> 12` is `floor(bits * log10(2))`), corrected by one
/// comparison.
#[inline]
fn digits(v: u64) -> usize {
    const POW10: [u64; 20] = {
        let mut t = [1u64; 20];
        let mut i = 1;
        while i < 20 {
            t[i] = t[i - 1] * 10;
            i += 1;
        }
        t
    };
    let bits = u64::BITS - (v | 1).leading_zeros();
    let t = ((bits * 1233) >> 12) as usize;
    (t + usize::from(v >= POW10[t])).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Writer)) -> std::string::String {
        let mut w = Writer::fd(-1);
        f(&mut w);
        let s = std::string::String::from_utf8(w.written().to_vec()).unwrap();
        w.len = 0;
        s
    }

    /// What to write, and the text it must give.
    type Case = (fn(&mut Writer) -> &mut Writer, &'static str);

    fn check(cases: &[Case]) {
        for (write, want) in cases {
            assert_eq!(
                text(|w| {
                    write(w);
                }),
                *want
            );
        }
    }

    #[test]
    fn integers_and_hex() {
        check(&[
            (|w| w.u64(0), "0"),
            (|w| w.u64(u64::MAX), "18446744073709551615"),
            (|w| w.i64(-42), "-42"),
            (|w| w.u64_w(7, 4), "   7"),
            (|w| w.hex(0xdead_beef), "0xdeadbeef"),
            (|w| w.hex(0), "0x0"),
            (|w| w.hex(0xf), "0xf"),
            (|w| w.hex(0x10), "0x10"),
            (|w| w.hex(usize::MAX), "0xffffffffffffffff"),
            (|w| w.hex(0x0123_4567_89ab_cdef), "0x123456789abcdef"),
            (|w| w.hex(0xfedc_ba98_7654_3210), "0xfedcba9876543210"),
            (|w| w.hex(0x9a0f), "0x9a0f"),
            (|w| w.u64(9).u64(10).u64(99).u64(100), "91099100"),
            (
                |w| w.u64(10_000_000_000_000_000_000),
                "10000000000000000000",
            ),
            (|w| w.u64(9_999_999_999_999_999_999), "9999999999999999999"),
            (|w| w.u64(1_048_576).str(" ").u64(524_288), "1048576 524288"),
        ]);
    }

    #[test]
    fn hex_near_the_end_of_the_buffer_flushes_first() {
        // 18 bytes are written whatever the digits: with fewer left, the
        // buffer is flushed (to nowhere here) and the number starts it.
        let mut w = Writer::<28>::fd_sized(-1);
        w.str("0123456789");
        w.hex(0xab);
        assert_eq!(w.written(), b"01234567890xab");
        w.hex(0x1234_5678_9abc);
        assert_eq!(w.written(), b"0x123456789abc");
        // A buffer too small for the fast path takes the other one.
        let mut small = Writer::<8>::fd_sized(-1);
        small.hex(0xdead);
        assert_eq!(small.written(), b"0xdead");
    }

    #[test]
    fn digit_counts_at_every_power_of_ten() {
        let mut p = 1u64;
        for n in 1..=20 {
            assert_eq!(digits(p), n, "{p}");
            if n > 1 {
                assert_eq!(digits(p - 1), n - 1, "{}", p - 1);
            }
            p = p.wrapping_mul(10);
        }
        assert_eq!(digits(0), 1);
        assert_eq!(digits(u64::MAX), 20);
    }

    /// What `f` writes through an 8-byte writer to a pipe.
    fn through_pipe(f: impl FnOnce(&mut Writer<8>)) -> std::vec::Vec<u8> {
        let (r, w) = super::super::fd::pipe().unwrap();
        {
            let mut out = Writer::<8>::fd_sized(w);
            f(&mut out);
        }
        super::super::fd::close(w);
        let mut buf = [0u8; 64];
        let n = super::super::fd::read_full(r, &mut buf);
        super::super::fd::close(r);
        buf[..n].to_vec()
    }

    #[test]
    fn numbers_are_written_as_decimals() {
        let mut vals = std::vec![0u64, u64::MAX, u64::MAX - 1];
        let mut p = 1u64;
        for _ in 0..20 {
            vals.extend([p - 1, p, p + 1, p.saturating_mul(7) / 3]);
            p = p.saturating_mul(10);
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Every length, not only the long ones a uniform draw gives.
            vals.push(x >> (x % 64));
        }
        // One at a time, and every number up to six digits (each digit in
        // each lane of the eight-digit split).
        vals.extend(0..1_000_000);
        for &v in &vals {
            let got = text(|w| {
                w.u64(v);
            });
            assert_eq!(got, std::format!("{v}"));
        }
    }

    #[test]
    fn numbers_longer_than_the_buffer_go_in_pieces() {
        let got = through_pipe(|out| {
            out.str("ab")
                .u64(12_345_678_901)
                .hex(0x1234_5678_9abc)
                .u64(0);
        });
        assert_eq!(got, b"ab123456789010x123456789abc0");
    }

    #[test]
    fn formats_through_core_fmt() {
        assert_eq!(
            text(|w| {
                let _ = core::fmt::Write::write_fmt(w, format_args!("{} {:#x} {}", 42, 255, "end"));
            }),
            "42 0xff end"
        );
    }

    #[test]
    fn flushes_whole_buffers_to_the_fd() {
        let got = through_pipe(|out| {
            out.str("a long line of text").u64(7);
        });
        assert_eq!(got, b"a long line of text7");
    }

    #[test]
    fn decimals_and_sizes() {
        check(&[
            (|w| w.fixed(1.25, 2), "1.25"),
            (|w| w.fixed(0.0049, 2), "0.00"),
            (|w| w.fixed(3.0, 3), "3.000"),
            (|w| w.fixed(2.5, 0), "3"),
            (|w| w.size(100), "100 B"),
            (|w| w.size(1536), "1.5 KiB"),
            (|w| w.size(3 << 20), "3.0 MiB"),
        ]);
    }
}
