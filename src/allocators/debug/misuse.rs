//! Misuse detection and its reports: what a bad pointer is (interior,
//! another instance's, foreign), double frees and use of freed blocks,
//! length/alignment mismatches, damaged redzones, writes after free, and
//! faults on guard pages. Each finding prints a `liballoc: error: ...`
//! report with the relevant traces (`report.rs`) and is then raised: the
//! process aborts, or with `LA_DEBUG_CONTINUE` the error is counted.
//!
//! Everything here runs with the instance's lock held, on error paths
//! (except `check_zones`/`check_fill`, which run on every free/eviction and
//! return at once when nothing is wrong).

use core::ptr;
use core::sync::atomic::Ordering;

use super::fill::first_unfilled;
use super::redzone::{check_canary, fill_canary};
use super::table::{FREED, KIND_BACKING, KIND_GUARDED, LIVE, Record};
use super::{ANY_LEN, FREE_FILL, REGISTRY, REGISTRY_LOCK, State, la_debug, la_debug_error};
use crate::diag::report::{self, TraceRef};
use crate::diag::trace;
use crate::diag::trace::MAX_FRAMES;

/// What a lookup of a pointer that is no block's start found (on error
/// paths only: the size of the interior case does not matter).
#[allow(clippy::large_enum_variant)]
enum Unknown {
    /// Inside this block (a copy of its record and allocation trace, which
    /// may come from another shard).
    Interior(Record, [usize; MAX_FRAMES], usize),
    OtherInstance,
    Foreign,
}

/// Retries before a lock that may be held is given up on (see `classify`
/// and `explain_fault`): a holder on another thread usually lets go within
/// them, and one that waits for us, or that we interrupted, never does.
const TRY_SPINS: u32 = 1000;

/// The interior-pointer finding for block `r` of `st`.
///
/// # Safety
/// `r` is a record of `st`'s table.
unsafe fn interior(st: &State, r: *mut Record) -> Unknown {
    // SAFETY: caller's promise.
    let (rec, (at, _)) = unsafe { (*r, st.traces(r)) };
    let mut frames = [0usize; MAX_FRAMES];
    let n = at.len().min(MAX_FRAMES);
    frames[..n].copy_from_slice(&at[..n]);
    Unknown::Interior(rec, frames, n)
}

fn op_label(op: &str) -> &'static str {
    match op {
        "free" => "freed",
        "resize" => "resized",
        "remap" => "remapped",
        "realloc" => "reallocated",
        "malloc_usable_size" => "asked for its size",
        _ => "called",
    }
}

impl la_debug {
    /// Explains a pointer that is no block's start. Called with the lock of
    /// the shard `st` held, on error paths only; it tries the locks of our
    /// other shards, then, under the registry lock, each other instance's
    /// shards in turn to look the pointer up there (a shard busy at that
    /// moment is skipped: the pointer is then called foreign rather than
    /// risk a deadlock).
    fn classify(&self, st: &State, p: usize) -> Unknown {
        if let Some(r) = st.table.find_containing(p) {
            // SAFETY: a record of st.
            return unsafe { interior(st, r) };
        }
        for sh in self.shards() {
            if ptr::eq(sh.st.get().cast_const(), st) {
                continue;
            }
            // Only try: its holder may be waiting for ours.
            let Some(_g) = sh.lock.try_guard(TRY_SPINS) else {
                continue;
            };
            // SAFETY: the shard's lock is held.
            let ost = unsafe { sh.state_ref() };
            if let Some(r) = ost.table.find_containing(p) {
                // SAFETY: a record of ost.
                return unsafe { interior(ost, r) };
            }
        }
        let _registry = REGISTRY_LOCK.guard();
        for slot in &REGISTRY {
            let o = slot.load(Ordering::Acquire);
            if o.is_null() || ptr::eq(o, self) {
                continue;
            }
            // SAFETY: registered instances stay mapped while REGISTRY_LOCK
            // is held (destroy unregisters under it).
            let other = unsafe { &*o };
            for sh in other.shards() {
                // Only try: its holder may be waiting for REGISTRY_LOCK.
                let Some(_g) = sh.lock.try_guard(TRY_SPINS) else {
                    continue;
                };
                // SAFETY: the other instance's shard lock is held.
                let ost = unsafe { sh.state_ref() };
                if ost.table.find(p).is_some() || ost.table.find_containing(p).is_some() {
                    return Unknown::OtherInstance;
                }
            }
        }
        Unknown::Foreign
    }

    /// Reports a bad pointer given to `op` ("free", "resize", ...).
    pub(super) fn report_unknown(&self, st: &State, op: &str, p: usize, here: &[usize], tid: u32) {
        match self.classify(st, p) {
            Unknown::Interior(rec, frames, n) => {
                let at = &frames[..n];
                let state = if rec.state == LIVE { "live" } else { "freed" };
                report::misuse(
                    self.report_fd,
                    |o| {
                        let _ = core::fmt::Write::write_fmt(
                            o,
                            format_args!(
                                "{op} of interior pointer 0x{p:x}: {} byte(s) into a {state} block of {} byte(s) at 0x{:x}",
                                p - rec.addr,
                                rec.len,
                                rec.addr
                            ),
                        );
                    },
                    &[
                        TraceRef {
                            label: op_label(op),
                            tid,
                            frames: here,
                        },
                        TraceRef {
                            label: "block allocated",
                            tid: rec.alloc_tid,
                            frames: at,
                        },
                    ],
                );
                self.raise(la_debug_error::LA_DEBUG_INTERIOR_POINTER);
            }
            Unknown::OtherInstance => {
                report::misuse(
                    self.report_fd,
                    |o| {
                        let _ = core::fmt::Write::write_fmt(
                            o,
                            format_args!("{op} of 0x{p:x}, a block of another la_debug instance"),
                        );
                    },
                    &[TraceRef {
                        label: op_label(op),
                        tid,
                        frames: here,
                    }],
                );
                self.raise(la_debug_error::LA_DEBUG_OTHER_INSTANCE);
            }
            Unknown::Foreign => {
                report::misuse(
                    self.report_fd,
                    |o| {
                        let _ = core::fmt::Write::write_fmt(
                            o,
                            format_args!(
                                "{op} of foreign pointer 0x{p:x} (not allocated by this allocator)"
                            ),
                        );
                    },
                    &[TraceRef {
                        label: op_label(op),
                        tid,
                        frames: here,
                    }],
                );
                self.raise(la_debug_error::LA_DEBUG_FOREIGN_POINTER);
            }
        }
    }

    /// Reports an operation on a freed block (double free, realloc after free).
    pub(super) fn report_freed(
        &self,
        st: &State,
        op: &str,
        r: *mut Record,
        here: &[usize],
        tid: u32,
    ) {
        // SAFETY: an indexed record of our table.
        let rec = unsafe { &*r };
        // SAFETY: as above.
        let (at, ft) = unsafe { st.traces(r) };
        let double = op == "free";
        report::misuse(
            self.report_fd,
            |o| {
                let _ = if double {
                    core::fmt::Write::write_fmt(
                        o,
                        format_args!("double free of 0x{:x} ({} byte(s))", rec.addr, rec.len),
                    )
                } else {
                    core::fmt::Write::write_fmt(
                        o,
                        format_args!("{op} of freed block 0x{:x} ({} byte(s))", rec.addr, rec.len),
                    )
                };
            },
            &[
                TraceRef {
                    label: if double { "freed again" } else { op_label(op) },
                    tid,
                    frames: here,
                },
                TraceRef {
                    label: "first freed",
                    tid: rec.free_tid,
                    frames: ft,
                },
                TraceRef {
                    label: "allocated",
                    tid: rec.alloc_tid,
                    frames: at,
                },
            ],
        );
        self.raise(if double {
            la_debug_error::LA_DEBUG_DOUBLE_FREE
        } else {
            la_debug_error::LA_DEBUG_USE_AFTER_FREE
        });
    }

    /// Reports a length/alignment mismatch; true when the call matched.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_shape(
        &self,
        st: &State,
        op: &str,
        r: *mut Record,
        len: usize,
        align: u8,
        here: &[usize],
        tid: u32,
    ) -> bool {
        // SAFETY: an indexed record.
        let rec = unsafe { &*r };
        if (rec.len == len || len == ANY_LEN) && rec.align == align {
            return true;
        }
        self.report_shape(st, op, r, len, align, here, tid);
        false
    }

    /// The report of [`Self::check_shape`] (out of line: the checks stay
    /// small and fast).
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn report_shape(
        &self,
        st: &State,
        op: &str,
        r: *mut Record,
        len: usize,
        align: u8,
        here: &[usize],
        tid: u32,
    ) {
        // SAFETY: an indexed record.
        let rec = unsafe { &*r };
        // SAFETY: our record.
        let (at, _) = unsafe { st.traces(r) };
        let size = rec.len != len && len != ANY_LEN;
        report::misuse(
            self.report_fd,
            |o| {
                let _ = if size {
                    core::fmt::Write::write_fmt(
                        o,
                        format_args!(
                            "{op} with wrong size: block 0x{:x} has {} byte(s), {op} was given {len}",
                            rec.addr, rec.len
                        ),
                    )
                } else {
                    core::fmt::Write::write_fmt(
                        o,
                        format_args!(
                            "{op} with wrong alignment: block 0x{:x} has alignment {}, {op} was given {}",
                            rec.addr,
                            1usize << rec.align,
                            1usize << align
                        ),
                    )
                };
            },
            &[
                TraceRef {
                    label: op_label(op),
                    tid,
                    frames: here,
                },
                TraceRef {
                    label: "allocated",
                    tid: rec.alloc_tid,
                    frames: at,
                },
            ],
        );
        self.raise(if size {
            la_debug_error::LA_DEBUG_WRONG_SIZE
        } else {
            la_debug_error::LA_DEBUG_WRONG_ALIGNMENT
        });
    }

    /// Checks the redzones of a live block, reporting damage: the quick
    /// check inline, a closer look out of line.
    #[inline(always)]
    pub(super) fn check_zones(&self, st: &State, r: *mut Record, here: &[usize], tid: u32) {
        // SAFETY: an indexed record.
        let rec = unsafe { &*r };
        // SAFETY: an in-band record's block is held while its record is in
        // use.
        if !self.zones_intact(rec) || (rec.inband != 0 && !unsafe { st.table.header_intact(r) }) {
            self.check_zones_closely(st, r, here, tid);
        }
    }

    /// [`Self::check_zones`] byte by byte (blocks of other shapes, damage).
    #[inline(never)]
    fn check_zones_closely(&self, st: &State, r: *mut Record, here: &[usize], tid: u32) {
        // SAFETY: an indexed record.
        let rec = unsafe { &*r };
        let [front, back] = Self::zones(rec);
        let over = check_canary(self.canary, back.0, back.1);
        let under = if over.is_none() {
            check_canary(self.canary, front.0, front.1).or_else(|| {
                // SAFETY: an in-band record of st's table, block held.
                (rec.inband != 0)
                    .then(|| unsafe { st.table.header_damage(r) })
                    .flatten()
            })
        } else {
            None
        };
        if over.is_some() || under.is_some() {
            self.report_zones(st, r, here, tid, over, under);
        }
    }

    /// The report of [`Self::check_zones`] (out of line), which then
    /// repairs the redzones.
    #[cold]
    #[inline(never)]
    fn report_zones(
        &self,
        st: &State,
        r: *mut Record,
        here: &[usize],
        tid: u32,
        over: Option<usize>,
        under: Option<usize>,
    ) {
        // SAFETY: an indexed record.
        let rec = unsafe { &*r };
        let [front, back] = Self::zones(rec);
        let Some(bad) = over.or(under) else {
            return;
        };
        // SAFETY: our record.
        let (at, _) = unsafe { st.traces(r) };
        let is_over = over.is_some();
        report::misuse(
            self.report_fd,
            |o| {
                let _ = if is_over {
                    core::fmt::Write::write_fmt(
                        o,
                        format_args!(
                            "heap buffer overflow: byte {} past the end of the {}-byte block 0x{:x} was overwritten",
                            bad - back.0,
                            rec.len,
                            rec.addr
                        ),
                    )
                } else {
                    core::fmt::Write::write_fmt(
                        o,
                        format_args!(
                            "heap buffer underflow: byte {} before the {}-byte block 0x{:x} was overwritten",
                            rec.addr - bad,
                            rec.len,
                            rec.addr
                        ),
                    )
                };
            },
            &[
                TraceRef {
                    label: "detected on free",
                    tid,
                    frames: here,
                },
                TraceRef {
                    label: "allocated",
                    tid: rec.alloc_tid,
                    frames: at,
                },
            ],
        );
        self.raise(if is_over {
            la_debug_error::LA_DEBUG_OVERFLOW
        } else {
            la_debug_error::LA_DEBUG_UNDERFLOW
        });
        // Repair so the same damage is reported once.
        fill_canary(self.canary, front.0, front.1);
        fill_canary(self.canary, back.0, back.1);
        if rec.inband != 0 {
            // SAFETY: an in-band record of st's table, its block held.
            unsafe { st.table.write_header(r) };
        }
    }

    /// Verifies the free fill of a quarantined block, reporting writes.
    pub(super) fn check_fill(&self, st: &State, r: *mut Record) {
        // SAFETY: an indexed record.
        let rec = unsafe { &*r };
        if !self.check_waf || rec.kind != KIND_BACKING {
            return;
        }
        // SAFETY: the freed block's memory is still held (quarantine).
        let bytes =
            unsafe { core::slice::from_raw_parts(rec.addr as *const u8, self.fill_len(rec)) };
        if let Some(off) = first_unfilled(bytes) {
            self.report_fill(st, r, off);
        }
    }

    /// The report of [`Self::check_fill`] (out of line), which then refills
    /// the block.
    #[cold]
    #[inline(never)]
    fn report_fill(&self, st: &State, r: *mut Record, off: usize) {
        // SAFETY: an indexed record.
        let rec = unsafe { &*r };
        // SAFETY: our record.
        let (at, ft) = unsafe { st.traces(r) };
        report::misuse(
            self.report_fd,
            |o| {
                let _ = core::fmt::Write::write_fmt(
                    o,
                    format_args!(
                        "write after free: byte {off} of the freed {}-byte block 0x{:x} was modified",
                        rec.len, rec.addr
                    ),
                );
            },
            &[
                TraceRef {
                    label: "freed",
                    tid: rec.free_tid,
                    frames: ft,
                },
                TraceRef {
                    label: "allocated",
                    tid: rec.alloc_tid,
                    frames: at,
                },
            ],
        );
        self.raise(la_debug_error::LA_DEBUG_WRITE_AFTER_FREE);
        // SAFETY: as above; refill so it is reported once.
        unsafe { ptr::write_bytes(rec.addr as *mut u8, FREE_FILL, self.fill_len(rec)) };
    }

    /// Explains a memory fault at `addr` (from a SIGSEGV handler) when it
    /// hit a guard page or a freed guarded block: prints the report (with
    /// the faulting context's trace `here`) and returns true; false when
    /// the address is not ours or the lock cannot be taken.
    pub fn explain_fault(&self, addr: usize, here: &[usize]) -> bool {
        self.shards().iter().any(|sh| {
            let Some(_g) = sh.lock.try_guard(TRY_SPINS) else {
                return false;
            };
            // SAFETY: lock held.
            let st = unsafe { sh.state_ref() };
            self.explain_fault_in(st, addr, here)
        })
    }

    /// [`Self::explain_fault`] for the blocks of one shard (locked).
    fn explain_fault_in(&self, st: &State, addr: usize, here: &[usize]) -> bool {
        let mut hit = None;
        st.table.for_each(|r| {
            // SAFETY: indexed records are valid.
            let rec = unsafe { &*r };
            if rec.kind == KIND_GUARDED && rec.base <= addr && addr < rec.base + rec.base_len {
                hit = Some(r);
            }
        });
        let Some(r) = hit else {
            return false;
        };
        // SAFETY: an indexed record.
        let rec = unsafe { &*r };
        // SAFETY: our record.
        let (at, ft) = unsafe { st.traces(r) };
        let end = rec.addr + rec.len;
        let kind = if rec.state == FREED {
            la_debug_error::LA_DEBUG_USE_AFTER_FREE
        } else if addr >= end {
            la_debug_error::LA_DEBUG_OVERFLOW
        } else {
            la_debug_error::LA_DEBUG_UNDERFLOW
        };
        let freed = rec.state == FREED;
        let tid = trace::tid();
        let access = TraceRef {
            label: "faulting access",
            tid,
            frames: here,
        };
        let alloc = TraceRef {
            label: "allocated",
            tid: rec.alloc_tid,
            frames: at,
        };
        let free = TraceRef {
            label: "freed",
            tid: rec.free_tid,
            frames: ft,
        };
        let head = |o: &mut report::Out| {
            let _ = match kind {
                la_debug_error::LA_DEBUG_USE_AFTER_FREE => core::fmt::Write::write_fmt(
                    o,
                    format_args!(
                        "use after free: access at 0x{addr:x} in the freed {}-byte block 0x{:x}",
                        rec.len, rec.addr
                    ),
                ),
                la_debug_error::LA_DEBUG_OVERFLOW => core::fmt::Write::write_fmt(
                    o,
                    format_args!(
                        "heap buffer overflow (guard page): access at 0x{addr:x} is {} byte(s) past the end of the {}-byte block 0x{:x}",
                        addr - end,
                        rec.len,
                        rec.addr
                    ),
                ),
                _ => core::fmt::Write::write_fmt(
                    o,
                    format_args!(
                        "heap buffer underflow (guard page): access at 0x{addr:x} is {} byte(s) before the {}-byte block 0x{:x}",
                        rec.addr.saturating_sub(addr),
                        rec.len,
                        rec.addr
                    ),
                ),
            };
        };
        if freed {
            report::misuse(self.report_fd, head, &[access, free, alloc]);
        } else {
            report::misuse(self.report_fd, head, &[access, alloc]);
        }
        self.raise(kind);
        true
    }
}
