//! Reachability for leak reports at exit, as LeakSanitizer does it: blocks
//! still pointed to from the program's roots are in use, not leaked.
//!
//! Roots are the writable segments of every loaded module (data and bss,
//! via `dl_iterate_phdr`) and the current thread's stack from the stack
//! pointer up (registers are spilled there by the call into this code).
//! Each aligned word that points into a live block (start or interior)
//! marks it; marked blocks are scanned in turn (a worklist in the private
//! arena). The mark is kept in the record's `_pad` byte. Blocks reachable
//! only from other threads' stacks or registers are reported as leaks.

use super::scratch::Scratch;
use super::table::{LIVE, Record, Table};

struct Ctx<'a> {
    sorted: &'a [*mut Record],
    work: &'a mut [*mut Record],
    top: usize,
}

impl Ctx<'_> {
    fn find(&self, v: usize) -> Option<*mut Record> {
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

unsafe extern "C" fn phdr_cb(
    info: *mut libc::dl_phdr_info,
    _size: usize,
    data: *mut libc::c_void,
) -> i32 {
    // SAFETY: dl_iterate_phdr passes a valid info and our context.
    let (info, ctx) = unsafe { (&*info, &mut *(data as *mut Ctx<'_>)) };
    for i in 0..info.dlpi_phnum as usize {
        // SAFETY: dlpi_phdr has dlpi_phnum entries.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_W != 0 {
            let lo = info.dlpi_addr as usize + ph.p_vaddr as usize;
            ctx.scan(lo, lo + ph.p_memsz as usize);
            ctx.drain();
        }
    }
    0
}

/// Marks (`_pad = 1`) every live block of `table` reachable from the roots;
/// clears the marks of the others.
#[inline(never)]
pub fn mark_reachable(table: &Table, scratch: &mut Scratch) {
    let mut n = 0;
    table.for_each(|r| {
        // SAFETY: indexed records are valid.
        unsafe {
            (*r)._pad = 0;
            if (*r).state == LIVE {
                n += 1;
            }
        }
    });
    let (Some(sorted), Some(work)) = (
        scratch.slice::<*mut Record>(n),
        scratch.slice::<*mut Record>(n),
    ) else {
        return;
    };
    let mut k = 0;
    table.for_each(|r| {
        // SAFETY: as above.
        if unsafe { (*r).state } == LIVE {
            sorted[k] = r;
            k += 1;
        }
    });
    // SAFETY: valid records.
    sorted.sort_unstable_by_key(|&r| unsafe { (*r).addr });
    let mut ctx = Ctx {
        sorted,
        work,
        top: 0,
    };
    // SAFETY: the callback only reads program headers and writable segments.
    unsafe { libc::dl_iterate_phdr(Some(phdr_cb), (&mut ctx as *mut Ctx<'_>).cast()) };
    let marker = 0usize;
    let sp = &marker as *const usize as usize;
    let (_, hi) = super::trace::stack_bounds(sp);
    ctx.scan(sp, hi);
    ctx.drain();
}
