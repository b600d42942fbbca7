//! Reachability for leak reports at exit, as LeakSanitizer does it: blocks
//! still pointed to from the program's roots are in use, not leaked.
//!
//! Roots are the writable segments of every loaded module (data and bss,
//! via `dl_iterate_phdr`), the current thread's stack from the stack
//! pointer up (registers are spilled there by the call into this code; at
//! exit, from the exit-time handler's caller up: see [`note_exit_frame`]), and
//! every other writable anonymous mapping (other threads' stacks and TLS,
//! memory that programs map themselves, such as Python's object arenas),
//! minus the live blocks themselves (they count only when reachable), the
//! allocator's own record slabs (which hold every block's address) and,
//! over the smp allocator, all of its chunks (free and quarantined blocks
//! keep stale addresses there).
//! Each aligned word that points into a live block (start or interior)
//! marks it; marked blocks are scanned in turn (a worklist in the private
//! arena). The mark is kept in the record's `_pad` byte.

use core::sync::atomic::{AtomicUsize, Ordering};

use super::table::{Record, Table};
use crate::diag::scratch::Scratch;

/// The lowest live stack address of the thread running `exit()` when its
/// exit-time handler began (0: not exiting). Everything below it is dead
/// frames: the exit path's own, and under them, words left by earlier,
/// deeper calls (copies of pointers the program has since dropped).
static EXIT_STACK_TOP: AtomicUsize = AtomicUsize::new(0);

/// Records where the exiting thread's live stack begins: the scan of this
/// thread's stack then starts there, not at the scan's own stack pointer.
/// Inlined into the exit-time handler (registered with `atexit`), whose
/// frame it starts from. The frames `exit()` itself runs in are dead too
/// (their holes keep words of earlier, deeper calls): when the return
/// address into `exit` is found above the handler, the boundary moves up
/// to the next return address after it, the one into `exit`'s caller.
/// Not for use while the allocator's lock is held (`dladdr` takes the
/// loader's lock).
#[inline(always)]
pub fn note_exit_frame() {
    let fp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads a register. Frame pointers are kept in every function
    // (`.cargo/config.toml`): rbp is this frame, rbp + 16 the caller's
    // stack pointer at the call.
    unsafe {
        core::arch::asm!("lea {}, [rbp + 16]", out(reg) fp, options(nomem, nostack, preserves_flags))
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads a register; x29 is this frame's record.
    unsafe {
        core::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags))
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        fp = 0;
    }
    EXIT_STACK_TOP.store(past_exit(fp), Ordering::Relaxed);
}

/// Words searched above a frame for a return address.
const SEARCH_WORDS: usize = 96;

/// Whether `v` is an address in `exit`.
fn in_exit(v: usize) -> bool {
    crate::sys::loader::address_info(v)
        .is_some_and(|i| i.symbol == b"exit" || i.symbol == b"__GI_exit")
}

/// Whether `v` is an address in an executable mapping.
fn is_code(v: usize) -> bool {
    let mut code = false;
    crate::diag::maps::for_each(|m| {
        if m.lo <= v && v < m.hi {
            code = m.executable;
            false
        } else {
            true
        }
    });
    code
}

/// The slot of the return address into `exit`'s caller, above `sp` on the
/// same stack (`sp` itself when not found).
fn past_exit(sp: usize) -> usize {
    if sp == 0 {
        return 0;
    }
    let (_, hi) = crate::diag::trace::stack_bounds(sp);
    let word = |i: usize| -> Option<usize> {
        let at = sp + i * 8;
        // SAFETY: a slot of this thread's stack, below its top.
        (at + 8 <= hi).then(|| unsafe { *(at as *const usize) })
    };
    let Some(ret) =
        (0..SEARCH_WORDS).find(|&i| word(i).is_some_and(|v| in_exit(v.wrapping_sub(1))))
    else {
        return sp;
    };
    (ret + 1..ret + SEARCH_WORDS)
        .find(|&i| word(i).is_some_and(is_code))
        .map_or(sp + (ret + 1) * 8, |i| sp + i * 8)
}

struct Ctx<'a> {
    sorted: &'a [*mut Record],
    work: &'a mut [*mut Record],
    top: usize,
    /// `[lo, hi)` spans every live block: most words fall outside and are
    /// rejected without a search.
    lo: usize,
    hi: usize,
}

impl Ctx<'_> {
    #[inline]
    fn find(&self, v: usize) -> Option<*mut Record> {
        if v.wrapping_sub(self.lo) >= self.hi.wrapping_sub(self.lo) {
            return None;
        }
        // The last block starting at or below v.
        // SAFETY: records in the sorted list are valid.
        let i = self.sorted.partition_point(|&r| unsafe { (*r).addr } <= v);
        if i == 0 {
            return None;
        }
        let r = self.sorted[i - 1];
        // SAFETY: records in the sorted list are valid.
        let (a, l) = unsafe { ((*r).addr, (*r).len) };
        (v < a + l.max(1)).then_some(r)
    }

    fn scan(&mut self, lo: usize, hi: usize) {
        let mut p = (lo + 7) & !7;
        while p + 8 <= hi {
            // SAFETY: callers pass readable ranges.
            let v = unsafe { *(p as *const usize) };
            if let Some(r) = self.find(v) {
                // SAFETY: a valid record; `_pad` is the mark.
                unsafe {
                    if (*r)._pad == 0 {
                        (*r)._pad = 1;

                        if self.top < self.work.len() {
                            self.work[self.top] = r;
                            self.top += 1;
                        }
                    }
                }
            }
            p += 8;
        }
    }

    /// Scans `[lo, hi)` except live blocks' user ranges and `excluded`.
    fn scan_gaps(&mut self, lo: usize, hi: usize, excluded: &[(usize, usize)]) {
        // SAFETY: records in the sorted list are valid.
        let mut i = self
            .sorted
            .partition_point(|&r| unsafe { (*r).addr + (*r).len.max(1) } <= lo);
        let mut at = lo;
        while at < hi {
            let (next_lo, next_hi) = match self.sorted.get(i) {
                // SAFETY: as above.
                Some(&r) => unsafe { ((*r).addr.max(at), (*r).addr + (*r).len.max(1)) },
                None => (hi, hi),
            };
            let gap_end = next_lo.min(hi);
            if gap_end > at {
                self.scan_minus(at, gap_end, excluded);
            }
            at = at.max(next_hi);
            i += 1;
        }
    }

    fn scan_minus(&mut self, lo: usize, hi: usize, excluded: &[(usize, usize)]) {
        for &(elo, ehi) in excluded {
            if elo < hi && lo < ehi {
                if lo < elo {
                    self.scan_minus(lo, elo, excluded);
                }
                if ehi < hi {
                    self.scan_minus(ehi, hi, excluded);
                }
                return;
            }
        }
        self.scan_resident(lo, hi);
    }

    /// Scans the pages of `[lo, hi)` that are resident: untouched pages of
    /// large reservations hold nothing and would only be faulted in.
    fn scan_resident(&mut self, lo: usize, hi: usize) {
        let page = crate::sys::page_size();
        let mut at = lo & !(page - 1);
        let mut vec = [0u8; 1024];
        while at < hi {
            let n = ((hi - at).div_ceil(page)).min(vec.len());
            let ok = crate::sys::resident(at, &mut vec[..n]);
            for (i, &v) in vec[..n].iter().enumerate() {
                // When the run is not all mapped, each page is asked alone
                // and those not mapped are skipped.
                let resident = if ok {
                    v & 1 != 0
                } else {
                    let mut one = [0u8];
                    crate::sys::resident(at + i * page, &mut one) && one[0] & 1 != 0
                };
                if resident {
                    let plo = (at + i * page).max(lo);
                    let phi = (at + (i + 1) * page).min(hi);
                    self.scan(plo, phi);
                }
            }
            at += n * page;
        }
    }

    /// [`Ctx::scan_gaps`], less the chunks of the smp allocator when
    /// `skip_smp` (its segments hold live blocks, scanned only when
    /// reached, and besides them free blocks, quarantined ones and its own
    /// metadata: stale addresses, not roots).
    fn scan_owned_gaps(
        &mut self,
        lo: usize,
        hi: usize,
        excluded: &[(usize, usize)],
        skip_smp: bool,
    ) {
        if !skip_smp {
            self.scan_gaps(lo, hi, excluded);
            return;
        }
        let chunk = crate::allocators::smp::CHUNK_SIZE;
        let mut at = lo;
        while at < hi {
            let end = ((at & !(chunk - 1)) + chunk).min(hi);
            if !crate::allocators::smp::owns_chunk(at) {
                self.scan_gaps(at, end, excluded);
            }
            at = end;
        }
    }

    fn drain(&mut self) {
        while self.top > 0 {
            self.top -= 1;
            let r = self.work[self.top];
            // SAFETY: a live block's user range is readable.
            let (a, l) = unsafe { ((*r).addr, (*r).len) };
            self.scan(a, a + l);
        }
    }
}

/// Most writable module segments remembered.
const MAX_SEGMENTS: usize = 256;

/// The writable segments of the loaded modules (data and bss), gathered by
/// [`Segments::gather`] before the allocator's locks are taken: another
/// thread may hold the loader's lock (inside its own `dl_iterate_phdr`
/// callback, say) and call `free`, so calling into the loader with the
/// allocator's locks held could leave both threads waiting for each other.
pub struct Segments {
    ranges: [(usize, usize); MAX_SEGMENTS],
    n: usize,
}

impl Segments {
    /// None (no module is scanned).
    pub const fn empty() -> Self {
        Segments {
            ranges: [(0, 0); MAX_SEGMENTS],
            n: 0,
        }
    }

    /// Asks the loader for the writable segments. Not to be called with
    /// the allocator's locks held.
    pub fn gather() -> Self {
        let mut s = Self::empty();
        crate::sys::loader::for_each_module(|m| {
            for seg in m.segments().filter(|seg| seg.writable) {
                if s.n < MAX_SEGMENTS {
                    s.ranges[s.n] = (seg.lo, seg.hi);
                    s.n += 1;
                }
            }
            true
        });
        s
    }

    fn ranges(&self) -> &[(usize, usize)] {
        &self.ranges[..self.n]
    }
}

/// Marks (`_pad = 1`; callers clear the marks first) every block of
/// `sorted` reachable from the roots: the live blocks of `tables` (the
/// shards of one instance), given in any order and sorted here by address.
/// `segments` were gathered before the tables' locks were taken.
#[inline(never)]
pub fn mark_reachable(
    sorted: &mut [*mut Record],
    tables: &[&Table],
    segments: &Segments,
    scratch: &mut Scratch,
) {
    let tables = || tables.iter();
    let Some(work) = scratch.slice::<*mut Record>(sorted.len()) else {
        return;
    };
    // SAFETY: valid records.
    sorted.sort_unstable_by_key(|&r| unsafe { (*r).addr });
    // SAFETY: valid records.
    let (lo, hi) = unsafe {
        (
            sorted.first().map_or(0, |&r| (*r).addr),
            sorted
                .iter()
                .map(|&r| (*r).addr + (*r).len.max(1))
                .max()
                .unwrap_or(0),
        )
    };
    let mut ctx = Ctx {
        sorted,
        work,
        top: 0,
        lo,
        hi,
    };
    // Segments of modules unloaded since (none at exit, as a rule) are no
    // longer resident: `scan_resident` skips them.
    for &(lo, hi) in segments.ranges() {
        ctx.scan_resident(lo, hi);
        ctx.drain();
    }
    let marker = 0usize;
    let sp = &marker as *const usize as usize;
    let (stack_lo, hi) = crate::diag::trace::stack_bounds(sp);
    // The exiting thread: from the frame `exit()` ran its handler in.
    let top = EXIT_STACK_TOP.load(Ordering::Relaxed);
    let from = if top > sp && top < hi { top } else { sp };
    ctx.scan(from, hi);
    ctx.drain();
    let mut slabs = [(0usize, 0usize); 256];
    let mut ns = 0;
    for table in tables() {
        table.for_each_slab(|lo, hi| {
            if ns < slabs.len() {
                slabs[ns] = (lo, hi);
                ns += 1;
            }
        });
    }
    let mut ranges = [(0usize, 0usize); 512];
    let mut nr = 0;
    crate::diag::maps::for_each(|m| {
        if m.readable
            && m.writable
            && (m.name.is_empty() || m.name == b"[heap]")
            && m.lo != stack_lo
            && nr < ranges.len()
        {
            ranges[nr] = (m.lo, m.hi);
            nr += 1;
        }
        true
    });
    // Over the smp allocator (in-band tables), its memory is no root.
    let skip_smp = tables().any(|t| t.is_inband());
    for &(lo, hi) in &ranges[..nr] {
        ctx.scan_owned_gaps(lo, hi, &slabs[..ns], skip_smp);
        ctx.drain();
    }
}
