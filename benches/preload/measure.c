/*
 * measure.c: runs a command and prints "<wall seconds> <peak RSS bytes>
 * <exit status>" to the file named by its first argument.
 *
 * Used by bench.py instead of Python's subprocess: ru_maxrss of a child
 * includes the memory of the process it was forked from until exec, and a
 * Python interpreter would add ~15 MiB to every figure; this launcher is
 * tiny. The command gets LD_PRELOAD=$MEASURE_PRELOAD (the launcher itself
 * runs on plain glibc). Usage: measure OUTFILE TIMEOUT_SECONDS CMD ARGS...
 * An existing OUTFILE that is not a regular file of at most 256 bytes (an
 * earlier result) is left alone: a mistaken argument order would
 * otherwise overwrite a library or a program.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s OUTFILE TIMEOUT CMD ARGS...\n", argv[0]);
        return 2;
    }
    struct stat st;
    if (stat(argv[1], &st) == 0 && (!S_ISREG(st.st_mode) || st.st_size > 256)) {
        fprintf(stderr, "%s: %s exists and is not a result file; not overwritten\n", argv[0],
                argv[1]);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid == 0) {
        const char *preload = getenv("MEASURE_PRELOAD");
        if (preload && *preload) setenv("LD_PRELOAD", preload, 1);
        alarm((unsigned)atoi(argv[2]));
        execvp(argv[3], argv + 3);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid) return 1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    FILE *f = fopen(argv[1], "w");
    if (!f) return 1;
    fprintf(f, "%.6f %ld %d\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
            ru.ru_maxrss * 1024L, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    fclose(f);
    return 0;
}
