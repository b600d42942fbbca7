//! Clocks: the monotonic clock, fine and coarse, and the process's CPU
//! times.
//!
//! All read through the vDSO or one `getrusage` call; nothing allocates,
//! and a failed call reads as zero.

use super::errno;

/// Reads `clock` in nanoseconds (0 if it cannot be read).
#[inline]
fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out pointer.
    errno::keep(|| unsafe { libc::clock_gettime(clock, &mut ts) });
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A coarse monotonic clock in milliseconds (a few ms of resolution, the
/// cheapest clock there is).
#[inline]
pub fn now_ms() -> u64 {
    read(libc::CLOCK_MONOTONIC_COARSE) / 1_000_000
}

/// The monotonic clock in nanoseconds.
#[inline]
pub fn now_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// The process's resource usage so far, from `getrusage(RUSAGE_SELF)`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// CPU time in user mode, seconds.
    pub user_s: f64,
    /// CPU time in the kernel, seconds.
    pub sys_s: f64,
    /// Peak resident set size, bytes.
    pub max_rss: u64,
}

/// The process's CPU times and peak resident size (zeros if unknown).
pub fn usage() -> Usage {
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
    // SAFETY: ru is a valid out pointer.
    errno::keep(|| unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) });
    let seconds = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Usage {
        user_s: seconds(ru.ru_utime),
        sys_s: seconds(ru.ru_stime),
        max_rss: ru.ru_maxrss.max(0) as u64 * 1024,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_advance() {
        let (a, b) = (now_ns(), now_ms());
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(now_ns() > a);
        assert!(now_ms() >= b + 10);
        assert!(usage().max_rss > 0);
    }
}
