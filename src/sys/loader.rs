//! The dynamic loader: which module and symbol an address belongs to
//! (`dladdr`), the loadable segments of every loaded module
//! (`dl_iterate_phdr`), the unwind table of the module holding an
//! address (`_dl_find_object`), and the code of the module this library is
//! linked into, from its own ELF header (no call into the loader).
//!
//! None allocates. `_dl_find_object` takes no lock (it may run in a
//! signal handler, and inside `malloc`), nor does reading the library's own
//! headers. `dladdr` and `dl_iterate_phdr` take the loader's
//! lock, so a caller must not hold a lock that a thread inside the loader
//! (running a `dl_iterate_phdr` callback, say) could wait for: the debug
//! allocator gathers what it needs before taking its own locks. `errno` is
//! left as it was.

use super::errno;
use core::ffi::{CStr, c_char, c_int, c_void};

/// What the loader knows about one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressInfo {
    /// The path of the module holding it, as the loader has it (the main
    /// program's may be empty or its `argv[0]`).
    pub module: &'static [u8],
    /// The module's load base (where its ELF header is mapped).
    pub base: usize,
    /// The nearest dynamic symbol at or below the address (empty when
    /// there is none).
    pub symbol: &'static [u8],
}

/// Bytes of a loader-owned C string (empty for NULL).
fn loader_bytes(p: *const c_char) -> &'static [u8] {
    if p.is_null() {
        return &[];
    }
    // SAFETY: a NUL-terminated string owned by the loader, alive as long as
    // its module stays loaded.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

/// The module and nearest symbol of `addr` (`dladdr`); `None` when no
/// loaded module holds it. The strings live as long as the module stays
/// loaded.
pub fn address_info(addr: usize) -> Option<AddressInfo> {
    // SAFETY: a zeroed Dl_info is a valid value to fill in.
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    // SAFETY: dladdr only reads the loader's tables, for any address.
    let rc = errno::keep(|| unsafe { libc::dladdr(addr as *const c_void, &mut info) });
    (rc != 0).then(|| AddressInfo {
        module: loader_bytes(info.dli_fname),
        base: info.dli_fbase as usize,
        symbol: loader_bytes(info.dli_sname),
    })
}

/// One loadable (`PT_LOAD`) segment of a module: `[lo, hi)` in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Its first address.
    pub lo: usize,
    /// The address just past its end.
    pub hi: usize,
    /// Mapped writable (data, bss).
    pub writable: bool,
    /// Mapped executable (code).
    pub executable: bool,
    /// Its offset in the module's file (`p_offset`).
    pub offset: usize,
}

/// One loaded module, as [`for_each_module`] passes it.
pub struct Module<'a> {
    info: &'a libc::dl_phdr_info,
}

impl Module<'_> {
    /// Whether this is the main program (the loader gives it no name).
    pub fn is_main_program(&self) -> bool {
        loader_bytes(self.info.dlpi_name).is_empty()
    }

    /// Its file name as the loader has it: empty for the main program, a
    /// bare name for the vDSO (`linux-vdso.so.1`).
    pub fn name(&self) -> &'static [u8] {
        loader_bytes(self.info.dlpi_name)
    }

    /// Its loadable segments, in program-header order.
    pub fn segments(&self) -> impl Iterator<Item = Segment> + '_ {
        let base = self.info.dlpi_addr as usize;
        (0..self.info.dlpi_phnum as usize).filter_map(move |i| {
            // SAFETY: dlpi_phdr has dlpi_phnum entries.
            let ph = unsafe { &*self.info.dlpi_phdr.add(i) };
            (ph.p_type == libc::PT_LOAD).then(|| {
                let lo = base + ph.p_vaddr as usize;
                Segment {
                    lo,
                    hi: lo + ph.p_memsz as usize,
                    writable: ph.p_flags & libc::PF_W != 0,
                    executable: ph.p_flags & libc::PF_X != 0,
                    offset: ph.p_offset as usize,
                }
            })
        })
    }
}

/// glibc's `_dl_find_object` (2.35 and later), kept out of the header.
///
/// cbindgen:ignore
mod find_object {
    use core::ffi::{c_int, c_void};

    /// The layout of glibc's `struct dl_find_object` on x86-64 and
    /// aarch64, where it has no `dlfo_eh_dbase`.
    #[repr(C)]
    pub struct DlFindObject {
        pub flags: u64,
        pub map_start: *mut c_void,
        pub map_end: *mut c_void,
        pub link_map: *mut c_void,
        pub eh_frame: *mut c_void,
        pub reserved: [u64; 7],
    }

    unsafe extern "C" {
        pub fn _dl_find_object(addr: *mut c_void, result: *mut DlFindObject) -> c_int;
    }
}

/// The address of the `.eh_frame_hdr` section (the `PT_GNU_EH_FRAME`
/// segment) of the module holding code address `addr`: `None` when no
/// loaded module holds it, or when that module has no such section.
/// Lock-free and async-signal-safe (`_dl_find_object`).
pub fn eh_frame_hdr(addr: usize) -> Option<usize> {
    let mut r = core::mem::MaybeUninit::<find_object::DlFindObject>::uninit();
    // SAFETY: `_dl_find_object` writes the whole struct when it returns 0
    // and reads nothing but the loader's own tables.
    let found = unsafe { find_object::_dl_find_object(addr as *mut c_void, r.as_mut_ptr()) } == 0;
    if !found {
        return None;
    }
    // SAFETY: written by the successful call above.
    let eh = unsafe { r.assume_init_ref() }.eh_frame as usize;
    (eh != 0).then_some(eh)
}

unsafe extern "C" {
    /// The ELF header of the module this code is linked into: the linker
    /// defines the symbol wherever the header is in a loaded segment, as
    /// it always is for an executable or shared object on Linux.
    static __ehdr_start: libc::Elf64_Ehdr;
}

/// Where this library's code lies: the span of the executable segments of
/// the module it is linked into, and whether that module is the main
/// program. Read from the module's own ELF header and program headers in
/// place, with neither the loader's lock nor a walk over every module
/// (every profiled process learns this when it starts).
pub fn own_code() -> (usize, usize, bool) {
    let eh = (&raw const __ehdr_start) as usize;
    // SAFETY: the linker's symbol is the module's mapped ELF header.
    let ehdr = unsafe { &*(eh as *const libc::Elf64_Ehdr) };
    debug_assert!(
        ehdr.e_ident[..4] == *b"\x7fELF",
        "__ehdr_start is no ELF header"
    );
    let phdrs = (eh + ehdr.e_phoff as usize) as *const libc::Elf64_Phdr;
    // SAFETY: the program headers of a loaded module are mapped (the
    // loader read them from there), e_phnum of them.
    let ph = unsafe { core::slice::from_raw_parts(phdrs, ehdr.e_phnum as usize) };
    // The load bias: the segment that maps file offset 0 maps the header.
    let bias = ph
        .iter()
        .find(|p| p.p_type == libc::PT_LOAD && p.p_offset == 0)
        .map_or(0, |p| eh.wrapping_sub(p.p_vaddr as usize));
    let (mut lo, mut hi) = (usize::MAX, 0);
    for p in ph
        .iter()
        .filter(|p| p.p_type == libc::PT_LOAD && p.p_flags & libc::PF_X != 0)
    {
        let start = bias.wrapping_add(p.p_vaddr as usize);
        lo = lo.min(start);
        hi = hi.max(start + p.p_memsz as usize);
    }
    // SAFETY: reads the process's auxiliary vector.
    let main = unsafe { libc::getauxval(libc::AT_PHDR) } as usize == phdrs as usize;
    if lo > hi {
        (0, 0, main)
    } else {
        (lo, hi, main)
    }
}

/// Calls `f` on each loaded module until it returns false
/// (`dl_iterate_phdr`, under the loader's lock).
pub fn for_each_module(mut f: impl FnMut(&Module<'_>) -> bool) {
    type Visit<'f> = &'f mut dyn FnMut(&Module<'_>) -> bool;
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: dl_iterate_phdr passes a valid info, and `data` is the
        // `Visit` below, alive for the whole iteration.
        let (info, f) = unsafe { (&*info, &mut *(data as *mut Visit<'_>)) };
        if f(&Module { info }) { 0 } else { 1 }
    }
    let mut visit: Visit<'_> = &mut f;
    // SAFETY: the callback only reads program headers and calls `f`.
    errno::keep(|| unsafe { libc::dl_iterate_phdr(Some(each), (&raw mut visit).cast()) });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_this_code_and_its_segment() {
        let here = finds_this_code_and_its_segment as fn() as usize;
        let info = address_info(here).unwrap();
        assert!(info.base != 0 && info.base <= here);
        let mut hits = 0;
        let mut modules = 0;
        for_each_module(|m| {
            modules += 1;
            hits += m
                .segments()
                .filter(|s| s.executable && s.lo <= here && here < s.hi)
                .count();
            true
        });
        assert_eq!(hits, 1);
        assert!(modules > 1);
        let mut first = 0;
        for_each_module(|_| {
            first += 1;
            false
        });
        assert_eq!(first, 1);
        assert!(address_info(8).is_none());
    }

    #[test]
    fn own_code_is_the_executable_segments_holding_this_code() {
        let here = own_code_is_the_executable_segments_holding_this_code as fn() as usize;
        let (lo, hi, main) = own_code();
        assert!(lo <= here && here < hi, "{lo:#x}..{hi:#x} vs {here:#x}");
        // The same as the loader says.
        let mut want = None;
        for_each_module(|m| {
            let (mut mlo, mut mhi) = (usize::MAX, 0);
            for s in m.segments().filter(|s| s.executable) {
                mlo = mlo.min(s.lo);
                mhi = mhi.max(s.hi);
            }
            if mlo <= here && here < mhi {
                want = Some((mlo, mhi, m.is_main_program()));
                return false;
            }
            true
        });
        assert_eq!(want, Some((lo, hi, main)));
    }

    #[test]
    fn finds_the_unwind_table_of_this_code() {
        let here = finds_the_unwind_table_of_this_code as fn() as usize;
        let hdr = eh_frame_hdr(here).unwrap();
        // SAFETY: the loader's mapped .eh_frame_hdr starts with version 1.
        assert_eq!(unsafe { *(hdr as *const u8) }, 1);
        assert!(eh_frame_hdr(8).is_none());
    }
}
