//! Report-time symbolization: return address → module, function, file:line.
//!
//! Runs only while a report is printed, never when a trace is captured.
//! `dladdr` gives each address's module (path and load base) and the nearest
//! dynamic symbol. For function names from the full symbol table and
//! file:line from DWARF, the binutils `addr2line` program (the field's
//! standard tool; `LA_ADDR2LINE` overrides its path) is run once per module
//! with all that module's addresses, via `vfork` + `execve` with an empty
//! environment (so it is not itself run under the malloc shim). All memory
//! comes from the report's private [`Scratch`] arena: symbolizing never
//! calls `malloc`, so it is safe inside `free` under the shim. When
//! `addr2line` is missing, reports still show `dladdr` names and
//! `module+offset`.

use core::ffi::{CStr, c_char};

use super::scratch::Scratch;

// The C side is src/c/debug_spawn.c (internal, not in the header).
#[allow(unused_doc_comments)]
/// cbindgen:ignore
unsafe extern "C" {
    fn liballoc_debug_spawn(
        path: *const c_char,
        argv: *const *const c_char,
        envp: *const *const c_char,
        out_pid: *mut i32,
    ) -> i32;
    fn liballoc_debug_reap(pid: i32);
}

/// What is known about one code address.
#[derive(Clone, Copy)]
pub struct Symbol {
    /// The code address described.
    pub addr: usize,
    /// The module's path (empty when unknown).
    pub module: &'static [u8],
    /// Offset of `addr` in the module, as the module's symbols count.
    pub offset: usize,
    /// Function name (empty when unknown).
    pub func: &'static [u8],
    /// `file:line` (empty when unknown).
    pub file_line: &'static [u8],
    base: usize,
}

/// Symbols for a set of addresses, sorted by address.
pub struct Symbols {
    syms: &'static mut [Symbol],
}

fn empty() -> Symbol {
    Symbol {
        addr: 0,
        module: &[],
        offset: 0,
        func: &[],
        file_line: &[],
        base: 0,
    }
}

fn cstr_bytes(p: *const c_char) -> &'static [u8] {
    if p.is_null() {
        return &[];
    }
    // SAFETY: a NUL-terminated string owned by the dynamic loader, alive as
    // long as the module stays loaded (the report's duration).
    unsafe { CStr::from_ptr(p).to_bytes() }
}

/// The path of the running executable, read once per report.
fn exe_path(scratch: &mut Scratch) -> &'static [u8] {
    let mut buf = [0u8; 4096];
    // SAFETY: readlink writes at most buf.len() bytes into our buffer.
    let n = unsafe {
        libc::readlink(
            c"/proc/self/exe".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n <= 0 {
        return &[];
    }
    scratch.copy(&buf[..n as usize]).unwrap_or(&[])
}

/// A NUL-terminated copy of `s` in the arena.
fn cstring(scratch: &mut Scratch, s: &[u8]) -> *const c_char {
    match scratch.slice::<u8>(s.len() + 1) {
        Some(d) => {
            d[..s.len()].copy_from_slice(s);
            d.as_ptr().cast()
        }
        None => c"".as_ptr(),
    }
}

fn hex_cstring(scratch: &mut Scratch, v: usize) -> *const c_char {
    let mut buf = [0u8; 20];
    buf[0] = b'0';
    buf[1] = b'x';
    let mut n = 2;
    let mut started = false;
    for shift in (0..16).rev() {
        let d = (v >> (shift * 4)) & 0xf;
        if d != 0 || started || shift == 0 {
            started = true;
            buf[n] = b"0123456789abcdef"[d];
            n += 1;
        }
    }
    cstring(scratch, &buf[..n])
}

fn addr2line_path() -> Option<&'static CStr> {
    // SAFETY: getenv reads the environment without allocating.
    let env = unsafe { libc::getenv(c"LA_ADDR2LINE".as_ptr()) };
    let candidates: [*const c_char; 3] = [
        env,
        c"/usr/bin/addr2line".as_ptr(),
        c"/bin/addr2line".as_ptr(),
    ];
    for p in candidates {
        // SAFETY: p is NULL or a C string; access has no other preconditions.
        if !p.is_null() && unsafe { libc::access(p, libc::X_OK) } == 0 {
            // SAFETY: a C string that outlives the report (environment or static).
            return Some(unsafe { CStr::from_ptr(p) });
        }
    }
    None
}

/// Reads everything from `fd` into the arena.
fn read_all(scratch: &mut Scratch, fd: i32, cap: usize) -> &'static [u8] {
    let Some(buf) = scratch.slice::<u8>(cap) else {
        // SAFETY: fd is ours.
        unsafe { libc::close(fd) };
        return &[];
    };
    let mut n = 0;
    loop {
        if n == buf.len() {
            // Drain and drop the rest: the buffer was sized generously.
            let mut sink = [0u8; 512];
            // SAFETY: reading into a stack buffer.
            if unsafe { libc::read(fd, sink.as_mut_ptr().cast(), sink.len()) } <= 0 {
                break;
            }
            continue;
        }
        // SAFETY: reading into the free tail of our buffer.
        let r = unsafe { libc::read(fd, buf[n..].as_mut_ptr().cast(), buf.len() - n) };
        if r < 0 {
            // SAFETY: reading errno.
            if unsafe { *libc::__errno_location() } == libc::EINTR {
                continue;
            }
            break;
        }
        if r == 0 {
            break;
        }
        n += r as usize;
    }
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    &buf[..n]
}

/// Runs addr2line on `syms` (all from one module) and fills func/file_line.
fn run_addr2line(scratch: &mut Scratch, tool: &CStr, syms: &mut [Symbol]) {
    let module = syms[0].module;
    let Some(argv) = scratch.slice::<*const c_char>(syms.len() + 7) else {
        return;
    };
    argv[0] = c"addr2line".as_ptr();
    argv[1] = c"-f".as_ptr();
    argv[2] = c"-C".as_ptr();
    argv[3] = c"-e".as_ptr();
    argv[4] = cstring(scratch, module);
    for (i, s) in syms.iter().enumerate() {
        // The return address points after the call: ask for the call itself.
        argv[5 + i] = hex_cstring(scratch, s.offset.saturating_sub(1));
    }
    argv[5 + syms.len()] = core::ptr::null();
    let envp: [*const c_char; 2] = [c"LC_ALL=C".as_ptr(), core::ptr::null()];
    let mut pid = 0;
    // SAFETY: argv and envp are NULL-terminated arrays of C strings.
    let fd = unsafe { liballoc_debug_spawn(tool.as_ptr(), argv.as_ptr(), envp.as_ptr(), &mut pid) };
    if fd < 0 {
        return;
    }
    let text = read_all(scratch, fd, 512 * syms.len() + 4096);
    // SAFETY: pid is the child we started.
    unsafe { liballoc_debug_reap(pid) };
    let mut lines = text.split(|&c| c == b'\n');
    for s in syms.iter_mut() {
        let (Some(func), Some(file)) = (lines.next(), lines.next()) else {
            break;
        };
        if func != b"??" && !func.is_empty() {
            s.func = func;
        }
        let file = match file.iter().position(|&c| c == b' ') {
            Some(i) => &file[..i],
            None => file,
        };
        if !file.starts_with(b"??") && !file.ends_with(b":0") && !file.ends_with(b":?") {
            s.file_line = file;
        }
    }
}

impl Symbols {
    /// Symbolizes `addrs` (duplicates allowed), using `scratch` for memory.
    pub fn resolve(scratch: &mut Scratch, addrs: &[usize]) -> Symbols {
        let Some(syms) = scratch.slice::<Symbol>(addrs.len()) else {
            return Symbols { syms: &mut [] };
        };
        for (s, &a) in syms.iter_mut().zip(addrs) {
            *s = empty();
            s.addr = a;
        }
        syms.sort_unstable_by_key(|s| s.addr);
        let mut n = 0;
        for i in 0..syms.len() {
            if i == 0 || syms[i].addr != syms[n - 1].addr {
                syms[n] = syms[i];
                n += 1;
            }
        }
        let syms = &mut syms[..n];
        let exe = exe_path(scratch);
        for s in syms.iter_mut() {
            // SAFETY: Dl_info is plain data; dladdr fills it or returns 0.
            let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
            // SAFETY: dladdr only reads loader state.
            if unsafe { libc::dladdr(s.addr as *const libc::c_void, &mut info) } == 0 {
                continue;
            }
            let base = info.dli_fbase as usize;
            let mut module = cstr_bytes(info.dli_fname);
            // The main program has an empty name (or argv[0]); use its path.
            if module.is_empty() || !module.contains(&b'/') {
                module = exe;
            }
            s.module = module;
            s.base = base;
            // Position-dependent executables use absolute addresses.
            // SAFETY: the ELF header is mapped at the module's load base.
            let e_type = unsafe { *((base + 16) as *const u16) };
            s.offset = if e_type == 2 { s.addr } else { s.addr - base };
            let name = cstr_bytes(info.dli_sname);
            if !name.is_empty() {
                s.func = name;
            }
        }
        if let Some(tool) = addr2line_path() {
            // Each module's symbols become one contiguous run.
            syms.sort_unstable_by_key(|s| (s.base, s.addr));
            let mut i = 0;
            while i < syms.len() {
                let mut j = i + 1;
                while j < syms.len() && syms[j].base == syms[i].base {
                    j += 1;
                }
                if !syms[i].module.is_empty() {
                    let mut k = i;
                    while k < j {
                        let end = (k + 512).min(j);
                        run_addr2line(scratch, tool, &mut syms[k..end]);
                        k = end;
                    }
                }
                i = j;
            }
            syms.sort_unstable_by_key(|s| s.addr);
        }
        Symbols { syms }
    }

    /// The symbol of `addr` (which must have been passed to `resolve`).
    pub fn get(&self, addr: usize) -> Symbol {
        match self.syms.binary_search_by_key(&addr, |s| s.addr) {
            Ok(i) => self.syms[i],
            Err(_) => Symbol { addr, ..empty() },
        }
    }
}
