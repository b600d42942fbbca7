//! Clocks: the monotonic clock, fine and coarse, the processor's
//! time-stamp counter, and the process's CPU times.
//!
//! All read through the vDSO, one instruction or one `getrusage` call;
//! nothing allocates, and a failed call reads as zero.

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

/// The coarse monotonic clock in nanoseconds (see [`now_ms`]).
#[inline]
pub fn now_coarse_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC_COARSE)
}

/// Whether [`ticks`] counts at one constant rate on every core, whatever
/// their frequency and sleep states: an x86-64 processor that reports an
/// invariant time-stamp counter (CPUID leaf 0x8000_0007, EDX bit 8), as
/// every one of the last fifteen years does and hypervisors pass on.
/// False elsewhere.
pub fn ticks_steady() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::__cpuid;
        // The extended leaf is read only when the processor says it has it.
        let max = __cpuid(0x8000_0000).eax;
        max >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The processor's time-stamp counter on x86-64, a clock where
/// [`ticks_steady`] says so (one instruction and no memory read: for code
/// that runs rarely and would otherwise fetch the vDSO's data into its
/// caches each time); its rate is learned by comparing it with [`now_ns`]
/// over a span. Elsewhere the coarse clock in nanoseconds.
#[inline(always)]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC exists on every x86-64 processor and reads no
        // memory.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        now_coarse_ns()
    }
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

    #[test]
    fn steady_ticks_keep_pace_with_the_fine_clock() {
        let (t0, n0) = (ticks(), now_ns());
        std::thread::sleep(std::time::Duration::from_millis(30));
        let (t1, n1) = (ticks(), now_ns());
        assert!(t1 > t0, "ticks went back: {t0} then {t1}");
        if ticks_steady() {
            // Any counter between 100 MHz and 10 GHz; a counter that
            // stopped while the thread slept would show far fewer ticks.
            let per_ns = (t1 - t0) as f64 / (n1 - n0) as f64;
            assert!((0.1..10.0).contains(&per_ns), "{per_ns} ticks per ns");
        }
    }
}
