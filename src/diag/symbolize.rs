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
use crate::sys::{fd, loader, process, spawn};

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

/// The path of the running executable, read once per report.
fn exe_path(scratch: &mut Scratch) -> &'static [u8] {
    let mut buf = [0u8; 4096];
    match fd::read_link(c"/proc/self/exe", &mut buf) {
        Some(n) => scratch.copy(&buf[..n]).unwrap_or(&[]),
        None => &[],
    }
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
    let candidates = [
        process::env(c"LA_ADDR2LINE"),
        Some(c"/usr/bin/addr2line"),
        Some(c"/bin/addr2line"),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| fd::is_executable(p))
}

/// Reads everything from `fd` into the arena (up to `cap` bytes; the rest
/// is drained and dropped) and closes it.
fn read_all(scratch: &mut Scratch, fd: i32, cap: usize) -> &'static [u8] {
    let Some(buf) = scratch.slice::<u8>(cap) else {
        fd::close(fd);
        return &[];
    };
    let n = fd::read_full(fd, buf);
    // Drain and drop the rest: the buffer was sized generously.
    let mut sink = [0u8; 512];
    while n == buf.len() && fd::read(fd, &mut sink).is_some_and(|k| k > 0) {}
    fd::close(fd);
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
    // SAFETY: argv and envp are NULL-terminated arrays of C strings that
    // live in the arena and on this stack until the call returns.
    let Some(child) = (unsafe { spawn::spawn_piped(tool.as_ptr(), argv.as_ptr(), envp.as_ptr()) })
    else {
        return;
    };
    let text = read_all(scratch, child.stdout, 512 * syms.len() + 4096);
    // The exit status does not matter: what it printed is used either way.
    let _ = spawn::wait(child.pid);
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
            let Some(info) = loader::address_info(s.addr) else {
                continue;
            };
            let base = info.base;
            let mut module = info.module;
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
            if !info.symbol.is_empty() {
                s.func = info.symbol;
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
