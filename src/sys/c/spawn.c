/*
 * spawn.c: runs a program with chosen standard descriptors, without
 * allocating (src/sys/spawn.rs is its Rust side).
 *
 * vfork + execve: the child borrows the parent's memory until execve, so
 * nothing is copied or allocated, no fork handlers run, and it works from
 * inside free() under the malloc shim. In the child, each of the three
 * standard descriptors becomes a copy of the one given, or /dev/null for
 * -1; the child inherits nothing else opened with O_CLOEXEC. The
 * names have no la_ prefix: internal, not exported from liballoc.so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* What to run (the Rust side's `Command`, same layout). */
struct liballoc_sys_command {
    const char *path;
    char *const *argv; /* NULL-terminated */
    char *const *envp; /* NULL-terminated */
    int std_fds[3];    /* std_fds[i] becomes descriptor i; -1: /dev/null */
};

int liballoc_sys_spawn(const struct liballoc_sys_command *cmd);
int liballoc_sys_wait(int pid);

/* Starts cmd->path; returns the child's pid, or -1 when it could not be
 * started. */
int liballoc_sys_spawn(const struct liballoc_sys_command *cmd) {
    pid_t pid = vfork();
    if (pid != 0) return pid < 0 ? -1 : (int)pid;
    /* In the child. Sources are first moved above 2, so that placing one
     * standard descriptor never overwrites the source of another (a program
     * may have closed its own), and dup2 always makes a copy without
     * close-on-exec. */
    int src[3];
    int null_fd = -1;
    for (int i = 0; i < 3; i++) {
        src[i] = cmd->std_fds[i];
        if (src[i] < 0) {
            if (null_fd < 0) null_fd = fcntl(open("/dev/null", O_RDWR | O_CLOEXEC), F_DUPFD_CLOEXEC, 3);
            src[i] = null_fd;
        } else if (src[i] < 3) {
            src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3);
        }
    }
    for (int i = 0; i < 3; i++) {
        if (src[i] >= 0) dup2(src[i], i);
    }
    execve(cmd->path, cmd->argv, cmd->envp);
    _exit(127);
}

/* Waits for a child started by liballoc_sys_spawn; its wait status, or -1
 * when it is not there (a SIGCHLD handler of the program's reaped it). */
int liballoc_sys_wait(int pid) {
    int status = 0;
    for (;;) {
        if (waitpid((pid_t)pid, &status, 0) >= 0) return status;
        if (errno != EINTR) return -1;
    }
}
