//! glibc's heap introspection, answered with the shim's figures:
//! `mallinfo`, `mallinfo2`, `malloc_stats`, `malloc_trim`, `malloc_info`,
//! `mallopt` (and the `__libc_mallinfo`/`__libc_mallopt` aliases).
//!
//! The figures come from the smp allocator's statistics (always on): memory
//! committed from the OS, live and peak bytes and blocks, per size class
//! counts; with `LA_STATS` set the shim's exact per-class counters (with
//! peaks) replace the per-class part (see `stats.rs`). `malloc_trim` really
//! returns memory: it runs the smp
//! allocator's `collect`. `mallopt` accepts and ignores glibc's tuning
//! parameters (they describe glibc's arenas, which do not exist here).

use core::ffi::c_int;

use super::stats;
use crate::allocators::smp;
use crate::sys::write::Writer;

/// glibc's `struct mallinfo` (int fields, wraps above 2 GiB).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Mallinfo {
    arena: c_int,
    ordblks: c_int,
    smblks: c_int,
    hblks: c_int,
    hblkhd: c_int,
    usmblks: c_int,
    fsmblks: c_int,
    uordblks: c_int,
    fordblks: c_int,
    keepcost: c_int,
}

/// glibc's `struct mallinfo2` (size_t fields).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Mallinfo2 {
    arena: usize,
    ordblks: usize,
    smblks: usize,
    hblks: usize,
    hblkhd: usize,
    usmblks: usize,
    fsmblks: usize,
    uordblks: usize,
    fordblks: usize,
    keepcost: usize,
}

/// The figures: `arena` = memory the allocator holds committed from the
/// OS, `uordblks` = bytes in live blocks, `fordblks` = committed but not in
/// live blocks, `ordblks` = live blocks, `usmblks` = peak live bytes,
/// `hblks` = live huge blocks (each its own mapping), `hblkhd` = the bytes
/// of their mappings. In the debug mode, live bytes and blocks are the
/// debug allocator's (requested bytes): quarantined blocks count as free.
fn info2() -> Mallinfo2 {
    let smp = stats::smp_stats();
    let s = stats::summary(super::counting(), &smp);
    let (mut live, mut blocks, mut peak) = (s.live_bytes, s.live_blocks, s.peak_bytes);
    if super::flags() & super::DEBUG != 0 {
        // The smp allocator also counts the blocks the debug allocator
        // holds back (freed, in its quarantine) and their redzones: the
        // program's own figures come from the debug allocator, and the rest
        // of what is held counts as free.
        let (b, n, pk) = super::debug_mode::live_totals();
        (live, blocks, peak) = (b as u64, n as u64, pk as u64);
    }
    let held = s.committed_bytes.max(live);
    let huge = smp.classes[0].allocs.saturating_sub(smp.classes[0].frees);
    Mallinfo2 {
        arena: held as usize,
        ordblks: blocks as usize,
        hblks: huge as usize,
        hblkhd: smp::huge_live_bytes(),
        usmblks: peak as usize,
        uordblks: live as usize,
        fordblks: held.saturating_sub(live) as usize,
        ..Mallinfo2::default()
    }
}

fn info() -> Mallinfo {
    let m = info2();
    // glibc's mallinfo truncates to int the same way.
    Mallinfo {
        arena: m.arena as c_int,
        ordblks: m.ordblks as c_int,
        smblks: 0,
        hblks: m.hblks as c_int,
        hblkhd: m.hblkhd as c_int,
        usmblks: m.usmblks as c_int,
        fsmblks: 0,
        uordblks: m.uordblks as c_int,
        fordblks: m.fordblks as c_int,
        keepcost: 0,
    }
}

/// `mallinfo()`.
#[unsafe(no_mangle)]
pub extern "C" fn mallinfo() -> Mallinfo {
    info()
}

/// `__libc_mallinfo()`.
#[unsafe(no_mangle)]
pub extern "C" fn __libc_mallinfo() -> Mallinfo {
    info()
}

/// `mallinfo2()`.
#[unsafe(no_mangle)]
pub extern "C" fn mallinfo2() -> Mallinfo2 {
    info2()
}

/// `malloc_stats()`: the statistics table on stderr. Like glibc's, it is
/// no cancellation point: cancellation is disabled while the table is read
/// and written (a pending request acts at the thread's next cancellation
/// point).
#[unsafe(no_mangle)]
pub extern "C" fn malloc_stats() {
    let old = crate::sys::disable_cancel();
    {
        let mut w = Writer::fd(2);
        stats::print_table(&mut w, super::counting());
    }
    crate::sys::restore_cancel(old);
}

/// `malloc_trim(pad)`: returns free memory to the OS; always 1 ("memory
/// may have been released").
#[unsafe(no_mangle)]
pub extern "C" fn malloc_trim(_pad: usize) -> c_int {
    smp::collect();
    1
}

/// `mallopt(param, value)`: accepted and ignored (returns 1, success).
#[unsafe(no_mangle)]
pub extern "C" fn mallopt(_param: c_int, _value: c_int) -> c_int {
    1
}

/// `__libc_mallopt`.
#[unsafe(no_mangle)]
pub extern "C" fn __libc_mallopt(param: c_int, value: c_int) -> c_int {
    mallopt(param, value)
}

/// `malloc_info(options, fp)`: an XML description in glibc's shape.
/// `options` must be 0, else it returns EINVAL (as glibc does).
///
/// # Safety
/// `fp` is an open stdio stream.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_info(options: c_int, fp: *mut libc::FILE) -> c_int {
    if options != 0 || fp.is_null() {
        return libc::EINVAL;
    }
    let counting = super::counting();
    let smp = stats::smp_stats();
    let s = stats::summary(counting, &smp);
    let mut w = Writer::file(fp);
    w.str("<malloc version=\"liballoc-1\">\n<heap nr=\"0\">\n<sizes>\n");
    for row in (0..stats::CLASSES).filter_map(|i| stats::class_row(i, counting, &smp)) {
        if row.block_size == 0 {
            // Huge blocks: sizes vary; the count is what smp knows.
            w.str("  <unsorted from=\"huge\" count=\"")
                .u64(row.live_blocks)
                .str("\"/>\n");
            continue;
        }
        w.str("  <size from=\"")
            .u64(row.block_size)
            .str("\" to=\"")
            .u64(row.block_size)
            .str("\" total=\"")
            .u64(row.live_bytes)
            .str("\" count=\"")
            .u64(row.live_blocks)
            .str("\"/>\n");
    }
    w.str("</sizes>\n<total type=\"live\" count=\"")
        .u64(s.live_blocks)
        .str("\" size=\"")
        .u64(s.live_bytes)
        .str("\"/>\n<system type=\"current\" size=\"")
        .u64(s.committed_bytes)
        .str("\"/>\n<system type=\"max\" size=\"")
        .u64(s.peak_committed_bytes)
        .str("\"/>\n</heap>\n<total type=\"live\" count=\"")
        .u64(s.live_blocks)
        .str("\" size=\"")
        .u64(s.live_bytes)
        .str("\"/>\n<system type=\"current\" size=\"")
        .u64(s.committed_bytes)
        .str("\"/>\n<system type=\"max\" size=\"")
        .u64(s.peak_committed_bytes)
        .str("\"/>\n</malloc>\n");
    w.flush();
    0
}
