//! Child processes: starting a helper program with its output in a pipe,
//! and waiting for it.
//!
//! The C side (`src/sys/c/spawn.c`) uses `vfork` + `execve`, so starting a
//! program allocates nothing and runs no `fork` handlers: it works from
//! inside `free` under the malloc shim (the debug allocator runs
//! `addr2line` this way). `errno` is left as it was.

use super::{errno, fd};
use core::ffi::{c_char, c_int};

/// What to run: `struct liballoc_sys_command` in `spawn.c`.
#[repr(C)]
struct Command {
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    /// `std_fds[i]` becomes descriptor `i` in the child; -1: `/dev/null`.
    std_fds: [c_int; 3],
}

unsafe extern "C" {
    fn liballoc_sys_spawn(cmd: *const Command) -> c_int;
    fn liballoc_sys_wait(pid: c_int) -> c_int;
}

/// A started child: its pid, and the read end of the pipe that is its
/// standard output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Child {
    /// The child's process id, for [`wait`].
    pub pid: c_int,
    /// Read end of the child's standard output; the caller closes it.
    pub stdout: c_int,
}

/// Runs the program at `path` with `argv` and `envp` (each a NULL-ended
/// array of NUL-terminated strings), its standard output in a pipe and its
/// standard input and error on `/dev/null`; `None` when the pipe or the
/// child could not be made.
///
/// # Safety
/// `path` is NUL-terminated; `argv` and `envp` are NULL-terminated arrays
/// of NUL-terminated strings that live until the call returns.
pub unsafe fn spawn_piped(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> Option<Child> {
    let (read_end, write_end) = fd::pipe()?;
    let cmd = Command {
        path,
        argv,
        envp,
        std_fds: [-1, write_end, -1],
    };
    // SAFETY: the caller's promises on the strings; cmd has the C layout.
    let pid = errno::keep(|| unsafe { liballoc_sys_spawn(&cmd) });
    fd::close(write_end);
    if pid < 0 {
        fd::close(read_end);
        return None;
    }
    Some(Child {
        pid,
        stdout: read_end,
    })
}

/// Waits for a child [`spawn_piped`] started (retrying `EINTR`): its wait
/// status, or `None` when it was reaped elsewhere (a `SIGCHLD` handler of
/// the program's).
pub fn wait(pid: c_int) -> Option<c_int> {
    // SAFETY: waitpid on a pid has no memory preconditions.
    let status = errno::keep(|| unsafe { liballoc_sys_wait(pid) });
    (status >= 0).then_some(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ptr;

    /// Runs `path` with `args` (and an empty environment): what it wrote to
    /// stdout (up to 16 bytes) and its wait status.
    fn run(
        path: &core::ffi::CStr,
        args: &[&core::ffi::CStr],
    ) -> (std::vec::Vec<u8>, Option<c_int>) {
        let mut argv: std::vec::Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(ptr::null());
        let envp = [ptr::null()];
        // SAFETY: NUL-terminated strings in NULL-ended arrays.
        let child = unsafe { spawn_piped(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) }.unwrap();
        let mut buf = [0u8; 16];
        let n = fd::read_full(child.stdout, &mut buf);
        fd::close(child.stdout);
        (buf[..n].to_vec(), wait(child.pid))
    }

    #[test]
    fn runs_a_program_and_reads_its_output() {
        assert_eq!(
            run(c"/bin/echo", &[c"echo", c"hello"]),
            (b"hello\n".to_vec(), Some(0))
        );
        assert_eq!(
            run(c"/nonexistent", &[c"x"]),
            (std::vec::Vec::new(), Some(127 << 8))
        );
    }

    #[test]
    fn only_stdout_reaches_the_pipe() {
        let script = c"echo out; echo err >&2; cat";
        assert_eq!(
            run(c"/bin/sh", &[c"sh", c"-c", script]),
            (b"out\n".to_vec(), Some(0))
        );
    }
}
