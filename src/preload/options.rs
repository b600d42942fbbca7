//! Options from the environment, read without allocating.
//!
//! The first allocation of the process may happen before the C library has
//! set up `getenv` (from the dynamic loader, TLS set-up or another library's
//! constructor), so the shim reads its `LA_*` variables itself: it walks
//! `environ` when the C library has set it, and otherwise reads
//! `/proc/self/environ` through a stack buffer with raw `open`/`read`.
//!
//! | variable | values | effect |
//! |---|---|---|
//! | `LA_STATS` | `1` (table) or `json` | statistics to stderr at exit |
//! | `LA_VERBOSE` | `1` | one line confirming the shim is active |
//! | `LA_FAIL_AT` | `N` >= 1 | allocation number N returns NULL/ENOMEM |
//! | `LA_DEBUG` | `1` | debug mode: `la_debug` behind the shim (`debug_mode.rs`) |
//! | `LA_LEAK_EXITCODE` | `N` | debug mode: exit status when leaks are found (read at exit) |
//! | `LA_SUPPRESSIONS` | file | debug mode: `leak:pattern` lines (read at exit) |
//! | `LA_LOG_PATH` | path prefix | debug mode: the leak report goes to the file `prefix.<pid>`, not stderr (read at exit) |
//! | `LA_DEBUG_FRAMES` | `0`..`32` | debug mode: frames per trace (default 8) |
//! | `LA_DEBUG_QUARANTINE` | bytes (`k`/`m`/`g` suffix) | debug mode: freed bytes held back before reuse (default 4m) |
//! | `LA_DEBUG_FILL` | bytes or `all` | debug mode: bytes filled and checked from the start of each freed block (default 4k; 0: none) |
//! | `LA_DEBUG_UNWIND` | `auto`, `tables` or `fp` | debug mode: where a trace reaches code built without frame pointers, it goes on with the unwind tables when it has fewer than 3 frames (`auto`, the default), always (`tables`) or never (`fp`) |
//! | `LA_PURGE_DELAY_MS` | `N` >= 0 | free memory stays committed this long before it goes back to the OS (default 50; debug mode 500) |
//! | `LA_PURGE_THREAD` | `0` or `1` | `0`: no background purger; free memory goes back only from allocation calls and `malloc_trim` (default 1) |
//! | `LA_PROFILE` | path | sampled heap profile written to the file at exit (`%p`: the process id, wanted when the program runs other programs; without `%p`, the first process claims the path, and a child of `fork()` or a program started meanwhile writes `path.<pid>`; `profile.rs`) |
//! | `LA_PROFILE_RATE` | bytes (`k`/`m`/`g` suffix), 1 to 1 TiB | mean bytes allocated between two samples (default 512k); alone, sampling for `la_profile_dump` |
//! | `LA_PROFILE_INTERVAL` | seconds >= 1 | a profile appended to the file every N seconds (while the program allocates) |
//! | `LA_PROFILE_SIGNAL` | `0` or `1` | `1`: SIGUSR2 appends a profile to the file (`la-profile.<pid>.raw` without `LA_PROFILE`) |
//!
//! Any other `LA_*` name, or a value the shim cannot use, gets a one-line
//! warning on stderr; the variable is then ignored.

use crate::diag::trace::UnwindTables;
use crate::sys;
use crate::sys::write::Writer;

/// How statistics are printed at exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum StatsMode {
    /// No statistics output.
    Off = 0,
    /// A human-readable table.
    Table = 1,
    /// One JSON object.
    Json = 2,
}

/// The parsed options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// `LA_STATS`.
    pub stats: StatsMode,
    /// `LA_VERBOSE`.
    pub verbose: bool,
    /// `LA_FAIL_AT` (0 = off).
    pub fail_at: u64,
    /// `LA_DEBUG` was set (the debug mode; see `debug_mode.rs`;
    /// verbose).
    pub debug_requested: bool,
    /// `LA_DEBUG_FRAMES`: frames per stack trace (unset: the debug
    /// allocator's default).
    pub debug_frames: Option<usize>,
    /// `LA_DEBUG_UNWIND`: when traces go on through code built without
    /// frame pointers with the unwind tables (`auto`: short ones, the
    /// default; `tables`: always; `fp`: never).
    pub debug_unwind: UnwindTables,
    /// `LA_DEBUG_QUARANTINE`: freed bytes held back before reuse (unset:
    /// the default).
    pub debug_quarantine: Option<usize>,
    /// `LA_DEBUG_FILL`: bytes of each freed block filled and checked for
    /// writes after free (unset: the default).
    pub debug_fill: Option<usize>,
    /// `LA_PURGE_DELAY_MS` (unset: the allocator's default).
    pub purge_delay_ms: Option<u64>,
    /// `LA_PURGE_THREAD` (default on).
    pub purge_thread: bool,
    /// `LA_PROFILE`: the profile path (`profile_path_len` bytes, empty when
    /// unset).
    pub profile_path: [u8; super::profile::PATH_MAX],
    /// How many bytes of `profile_path` are the path.
    pub profile_path_len: usize,
    /// `LA_PROFILE_RATE` (unset: the default, 512 KiB).
    pub profile_rate: Option<u64>,
    /// `LA_PROFILE_INTERVAL` in seconds.
    pub profile_interval_s: Option<u64>,
    /// `LA_PROFILE_SIGNAL`.
    pub profile_signal: bool,
}

impl Options {
    const DEFAULT: Options = Options {
        stats: StatsMode::Off,
        verbose: false,
        fail_at: 0,
        debug_requested: false,
        debug_frames: None,
        debug_unwind: UnwindTables::Short,
        debug_quarantine: None,
        debug_fill: None,
        purge_delay_ms: None,
        purge_thread: true,
        profile_path: [0; super::profile::PATH_MAX],
        profile_path_len: 0,
        profile_rate: None,
        profile_interval_s: None,
        profile_signal: false,
    };

    /// Whether any `LA_PROFILE*` option asks for sampling.
    pub fn profile_requested(&self) -> bool {
        self.profile_path_len > 0
            || self.profile_rate.is_some()
            || self.profile_interval_s.is_some()
            || self.profile_signal
    }
}

/// Names reserved for the debug mode: accepted without a warning.
const RESERVED: [&[u8]; 4] = [
    b"LA_DEBUG",
    b"LA_LEAK_EXITCODE",
    b"LA_SUPPRESSIONS",
    b"LA_LOG_PATH",
];

/// Reads the options from the process environment (see the module doc);
/// warnings are printed only when `report` is true.
pub fn load(report: bool) -> Options {
    // Built here, not copied from a constant: the defaults as one
    // 600-byte constant were the only thing start-up read from the upper
    // pages of the shim's read-only data, which then stayed resident in
    // every process (64 KiB by fault-around).
    let off = core::hint::black_box(false);
    let mut opts = Options {
        stats: StatsMode::Off,
        verbose: off,
        fail_at: 0,
        debug_requested: off,
        debug_frames: None,
        debug_unwind: UnwindTables::Short,
        debug_quarantine: None,
        debug_fill: None,
        purge_delay_ms: None,
        purge_thread: !off,
        profile_path: [0; super::profile::PATH_MAX],
        profile_path_len: 0,
        profile_rate: None,
        profile_interval_s: None,
        profile_signal: off,
    };
    debug_assert!(opts == Options::DEFAULT);
    // Entries longer than 256 bytes are cut; no `LA_*` value is that long.
    sys::process::for_each_env(|entry| apply(&mut opts, &entry[..entry.len().min(256)], report));
    opts
}

/// Applies one `NAME=value` environment entry (non-`LA_` names are
/// ignored).
fn apply(opts: &mut Options, entry: &[u8], report: bool) {
    if !entry.starts_with(b"LA_") {
        return;
    }
    let eq = entry.iter().position(|&b| b == b'=').unwrap_or(entry.len());
    let name = &entry[..eq];
    let value = entry.get(eq + 1..).unwrap_or(&[]);
    match name {
        b"LA_STATS" => match value {
            b"" | b"0" => opts.stats = StatsMode::Off,
            b"1" | b"table" | b"text" => opts.stats = StatsMode::Table,
            b"json" | b"JSON" => opts.stats = StatsMode::Json,
            _ if report => bad_value(name, value, "1 or json"),
            _ => {}
        },
        b"LA_VERBOSE" => match value {
            b"" | b"0" => opts.verbose = false,
            b"1" => opts.verbose = true,
            _ if report => bad_value(name, value, "0 or 1"),
            _ => {}
        },
        b"LA_FAIL_AT" => match parse_u64(value) {
            Some(n) => opts.fail_at = n,
            None if report => bad_value(name, value, "a decimal allocation number >= 1"),
            None => {}
        },
        b"LA_DEBUG" => opts.debug_requested = !matches!(value, b"" | b"0"),
        b"LA_DEBUG_FRAMES" => match parse_size(value).filter(|&n| n <= 32) {
            Some(n) => opts.debug_frames = Some(n),
            None if report => bad_value(name, value, "a frame count from 0 to 32"),
            None => {}
        },
        b"LA_DEBUG_UNWIND" => match value {
            b"" | b"auto" => opts.debug_unwind = UnwindTables::Short,
            b"tables" => opts.debug_unwind = UnwindTables::Always,
            b"fp" => opts.debug_unwind = UnwindTables::Off,
            _ if report => bad_value(name, value, "auto, tables or fp"),
            _ => {}
        },
        b"LA_DEBUG_QUARANTINE" => match parse_size(value) {
            Some(n) => opts.debug_quarantine = Some(n),
            None if report => bad_value(name, value, "a byte count, as 4194304 or 4m"),
            None => {}
        },
        b"LA_DEBUG_FILL" => match value {
            b"all" => opts.debug_fill = Some(usize::MAX),
            _ => match parse_size(value) {
                Some(n) => opts.debug_fill = Some(n),
                None if report => bad_value(name, value, "a byte count, as 4096 or 4k, or all"),
                None => {}
            },
        },
        b"LA_PURGE_DELAY_MS" => match value {
            b"0" => opts.purge_delay_ms = Some(0),
            _ => match parse_u64(value) {
                Some(n) => opts.purge_delay_ms = Some(n),
                None if report => bad_value(name, value, "a delay in milliseconds, as 50"),
                None => {}
            },
        },
        b"LA_PURGE_THREAD" => match value {
            b"0" => opts.purge_thread = false,
            b"" | b"1" => opts.purge_thread = true,
            _ if report => bad_value(name, value, "0 or 1"),
            _ => {}
        },
        b"LA_PROFILE" => {
            if value.is_empty() || value.len() >= opts.profile_path.len() || value.contains(&0) {
                if report {
                    bad_value(name, value, "a file path of at most 479 bytes");
                }
            } else {
                opts.profile_path[..value.len()].copy_from_slice(value);
                opts.profile_path_len = value.len();
            }
        }
        b"LA_PROFILE_RATE" => match parse_size(value)
            .map(|n| n as u64)
            .filter(|&n| (1..=super::profile::MAX_RATE).contains(&n))
        {
            Some(n) => opts.profile_rate = Some(n),
            None if report => bad_value(
                name,
                value,
                "a byte count from 1 to 1 TiB, as 524288 or 512k",
            ),
            None => {}
        },
        b"LA_PROFILE_INTERVAL" => match parse_u64(value).filter(|&n| n <= 1 << 32) {
            Some(n) => opts.profile_interval_s = Some(n),
            None if report => bad_value(name, value, "a number of seconds >= 1"),
            None => {}
        },
        b"LA_PROFILE_SIGNAL" => match value {
            b"" | b"0" => opts.profile_signal = false,
            b"1" => opts.profile_signal = true,
            _ if report => bad_value(name, value, "0 or 1"),
            _ => {}
        },
        _ if RESERVED.contains(&name) || !report => {}
        _ => {
            let mut w = Writer::fd(2);
            w.str("liballoc: warning: unknown environment variable ")
                .bytes(name)
                .str(" ignored (known: LA_STATS, LA_VERBOSE, LA_FAIL_AT, LA_DEBUG, LA_LEAK_EXITCODE, LA_SUPPRESSIONS, LA_LOG_PATH, LA_DEBUG_FRAMES, LA_DEBUG_QUARANTINE, LA_DEBUG_FILL, LA_PURGE_DELAY_MS, LA_PURGE_THREAD, LA_PROFILE, LA_PROFILE_RATE, LA_PROFILE_INTERVAL, LA_PROFILE_SIGNAL)\n");
        }
    }
}

fn bad_value(name: &[u8], value: &[u8], expected: &str) {
    let mut w = Writer::fd(2);
    w.str("liballoc: warning: ")
        .bytes(name)
        .str("=")
        .bytes(&value[..value.len().min(64)])
        .str(" ignored (expected ")
        .str(expected)
        .str(")\n");
}

/// A positive decimal number without sign or spaces.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(b - b'0');
    }
    (v > 0).then_some(v)
}

/// A byte count: decimal digits (0 allowed), optionally followed by `k`,
/// `m` or `g` (either case) for KiB, MiB, GiB; `None` when malformed or
/// beyond `usize`.
fn parse_size(s: &[u8]) -> Option<usize> {
    let (digits, shift) = match s.last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 10),
        b'm' | b'M' => (&s[..s.len() - 1], 20),
        b'g' | b'G' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits
        .iter()
        .fold(0u64, |v, &b| v * 10 + u64::from(b - b'0'));
    let v = usize::try_from(v).ok()?;
    v.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(entries: &[&[u8]]) -> Options {
        let mut o = Options::DEFAULT;
        for e in entries {
            apply(&mut o, e, false);
        }
        o
    }

    #[test]
    fn recognises_values() {
        let o = parse(&[
            b"LA_STATS=json",
            b"LA_VERBOSE=1",
            b"LA_FAIL_AT=42",
            b"PATH=/bin",
        ]);
        assert_eq!(o.stats, StatsMode::Json);
        assert!(o.verbose);
        assert_eq!(o.fail_at, 42);
        assert_eq!(parse(&[b"LA_STATS=1"]).stats, StatsMode::Table);
    }

    #[test]
    fn rejects_bad_values() {
        let o = parse(&[
            b"LA_FAIL_AT=0",
            b"LA_STATS=maybe",
            b"LA_FAIL_AT=x1",
            b"LA_NOPE=1",
        ]);
        assert_eq!(o, Options::DEFAULT);
        assert_eq!(parse_u64(b"99999999999999999999"), None);
        assert_eq!(parse_u64(b"18"), Some(18));
    }

    #[test]
    fn debug_tuning() {
        let o = parse(&[
            b"LA_DEBUG_FRAMES=3",
            b"LA_DEBUG_QUARANTINE=16m",
            b"LA_DEBUG_FILL=all",
        ]);
        assert_eq!(o.debug_frames, Some(3));
        assert_eq!(o.debug_quarantine, Some(16 << 20));
        assert_eq!(o.debug_fill, Some(usize::MAX));
        let o = parse(&[
            b"LA_DEBUG_FRAMES=0",
            b"LA_DEBUG_QUARANTINE=0",
            b"LA_DEBUG_FILL=2K",
        ]);
        assert_eq!(
            (o.debug_frames, o.debug_quarantine, o.debug_fill),
            (Some(0), Some(0), Some(2048))
        );
        assert_eq!(parse(&[]).debug_unwind, UnwindTables::Short);
        let unwind = |v: &[u8]| parse(&[v]).debug_unwind;
        assert_eq!(unwind(b"LA_DEBUG_UNWIND=tables"), UnwindTables::Always);
        assert_eq!(unwind(b"LA_DEBUG_UNWIND=fp"), UnwindTables::Off);
        assert_eq!(unwind(b"LA_DEBUG_UNWIND=auto"), UnwindTables::Short);
        let o = parse(&[
            b"LA_DEBUG_FRAMES=33",
            b"LA_DEBUG_QUARANTINE=-1",
            b"LA_DEBUG_FILL=lots",
            b"LA_DEBUG_QUARANTINE=99999999999g",
            b"LA_DEBUG_UNWIND=dwarf",
        ]);
        assert_eq!(o, Options::DEFAULT);
        assert_eq!(parse_size(b"k"), None);
        assert_eq!(parse_size(b"1G"), Some(1 << 30));
    }

    #[test]
    fn purge_options_are_read_and_checked() {
        let o = parse(&[b"LA_PURGE_DELAY_MS=250", b"LA_PURGE_THREAD=0"]);
        assert_eq!(o.purge_delay_ms, Some(250));
        assert!(!o.purge_thread);
        let o = parse(&[b"LA_PURGE_DELAY_MS=0", b"LA_PURGE_THREAD=1"]);
        assert_eq!(o.purge_delay_ms, Some(0));
        assert!(o.purge_thread);
        let o = parse(&[b"LA_PURGE_DELAY_MS=-5", b"LA_PURGE_THREAD=off"]);
        assert_eq!(o, Options::DEFAULT);
    }

    #[test]
    fn profile_options_are_read_and_checked() {
        let o = parse(&[
            b"LA_PROFILE=/tmp/p.%p.raw",
            b"LA_PROFILE_RATE=64k",
            b"LA_PROFILE_INTERVAL=2",
            b"LA_PROFILE_SIGNAL=1",
        ]);
        assert_eq!(&o.profile_path[..o.profile_path_len], b"/tmp/p.%p.raw");
        assert_eq!(o.profile_rate, Some(64 << 10));
        assert_eq!(o.profile_interval_s, Some(2));
        assert!(o.profile_signal && o.profile_requested());
        let o = parse(&[
            b"LA_PROFILE=",
            b"LA_PROFILE_RATE=0",
            b"LA_PROFILE_RATE=2000g",
            b"LA_PROFILE_INTERVAL=0",
            b"LA_PROFILE_SIGNAL=yes",
        ]);
        assert_eq!(o, Options::DEFAULT);
        assert!(!o.profile_requested());
    }

    #[test]
    fn reserved_names_are_known() {
        let o = parse(&[b"LA_DEBUG=1", b"LA_LEAK_EXITCODE=3", b"LA_SUPPRESSIONS=/x"]);
        assert!(o.debug_requested);
        assert!(RESERVED.contains(&&b"LA_LOG_PATH"[..]));
    }
}
