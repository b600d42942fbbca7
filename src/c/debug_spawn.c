/*
 * debug_spawn.c: starts a helper program for the debug allocator's reports
 * (addr2line, for file:line) with its standard output in a pipe, without
 * allocating: vfork + execve, so it works from inside free() under the
 * malloc shim and runs no fork handlers. The name has no la_ prefix: it is
 * internal and not exported from liballoc.so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs `path` with `argv` and `envp`; its stdout goes to a pipe whose read
 * end is returned (stderr and stdin go to /dev/null). Stores the child's pid
 * in *out_pid. Returns -1 when the pipe or the child could not be made. */
int liballoc_debug_spawn(const char *path, char *const argv[], char *const envp[], int *out_pid) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    pid_t pid = vfork();
    if (pid == 0) {
        int null_fd = open("/dev/null", O_RDWR);
        if (null_fd >= 0) {
            dup2(null_fd, 0);
            dup2(null_fd, 2);
        }
        dup2(fds[1], 1);
        execve(path, argv, envp);
        _exit(127);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return -1;
    }
    *out_pid = (int)pid;
    return fds[0];
}

/* Waits for the child started by liballoc_debug_spawn (the program's own
 * SIGCHLD handler may have reaped it already: ECHILD ends the wait). */
void liballoc_debug_reap(int pid) {
    int status;
    while (waitpid((pid_t)pid, &status, 0) < 0 && errno == EINTR) {
    }
}
