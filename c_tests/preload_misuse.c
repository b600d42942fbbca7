/*
 * preload_misuse.c: heap misuse must stop the process with a report.
 *
 * Each scenario (double free, interior, misaligned, stack, global and wild
 * pointers given to free/realloc, addresses inside the heap where no block
 * was ever handed out, ...) runs in a forked child whose stderr is
 * captured. With "shim" (under LD_PRELOAD=liballoc_preload.so) every child
 * must die of SIGABRT after writing "liballoc: fatal:" and the kind of
 * misuse: "double free" only for a block that was allocated and freed,
 * "invalid pointer" for everything else. With "glibc"
 * the program only reports what plain glibc does with each scenario
 * (abort, crash or nothing), the baseline the shim must at least match.
 * Not named test_*.c: it needs its argument and the preloaded shim.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* Called through volatile pointers so the compiler neither warns about nor
 * removes the deliberate misuse. */
static void (*volatile free_fn)(void *) = free;
static void *(*volatile realloc_fn)(void *, size_t) = realloc;

static _Alignas(16) char global_buf[256];

static void double_free(void) {
    void *p = malloc(64);
    free_fn(p);
    free_fn(p);
}

static void double_free_later(void) {
    void *p = malloc(200);
    free_fn(p);
    void *other[64];
    for (int i = 0; i < 64; i++) other[i] = malloc(16 + (size_t)i * 8);
    for (int i = 0; i < 64; i++) free(other[i]);
    free_fn(p);
}

static void double_free_large(void) {
    void *p = malloc(1 << 20);
    free_fn(p);
    free_fn(p);
}

static void interior(void) {
    char *p = malloc(64);
    memset(p, 0, 64);
    free_fn(p + 16);
}

static void interior_large(void) {
    char *p = malloc(1 << 20);
    free_fn(p + 4096);
}

static void misaligned(void) {
    char *p = malloc(64);
    free_fn(p + 1);
}

static void stack_pointer(void) {
    _Alignas(16) char buf[256];
    memset(buf, 0, sizeof buf);
    free_fn(buf + 64);
}

static void global_pointer(void) { free_fn(global_buf + 64); }

static void wild_pointer(void) { free_fn((void *)(uintptr_t)0x7e5700000000ull); }

/* The block after a fresh one of an otherwise unused size class: carved
 * (small blocks are carved 4 KiB at a time) but never handed out. */
static void never_allocated_block(void) {
    char *p = malloc(300);
    free_fn(p + malloc_usable_size(p));
}

/* The block after the only one of a page of 40 KiB blocks (carved one at a
 * time): not carved yet. */
static void uncarved_block(void) {
    char *p = malloc(40000);
    free_fn(p + malloc_usable_size(p));
}

/* Inside a huge block's mapping after the block was freed. */
static void inside_freed_huge(void) {
    char *p = malloc(8 << 20);
    free_fn(p);
    free_fn(p + (64 << 10));
}

static void realloc_stack(void) {
    _Alignas(16) char buf[256];
    memset(buf, 0, sizeof buf);
    realloc_fn(buf + 64, 100);
}

static void realloc_freed(void) {
    void *p = malloc(64);
    free_fn(p);
    realloc_fn(p, 128);
}

static void realloc_interior(void) {
    char *p = malloc(128);
    realloc_fn(p + 32, 300);
}

#define DOUBLE "double free"
#define INVALID "invalid pointer"

static const struct {
    const char *name;
    void (*run)(void);
    const char *report; /* what the shim's report must say */
} scenarios[] = {
    {"double free", double_free, DOUBLE},
    {"double free after other frees", double_free_later, DOUBLE},
    {"double free of a large block", double_free_large, DOUBLE},
    {"interior pointer", interior, INVALID},
    {"interior pointer of a large block", interior_large, INVALID},
    {"misaligned pointer", misaligned, INVALID},
    {"stack pointer", stack_pointer, INVALID},
    {"global pointer", global_pointer, INVALID},
    {"wild pointer", wild_pointer, INVALID},
    {"carved block never handed out", never_allocated_block, INVALID},
    {"uncarved block of a page", uncarved_block, INVALID},
    {"inside a freed huge block", inside_freed_huge, INVALID},
    {"realloc of a stack pointer", realloc_stack, INVALID},
    {"realloc of a freed block", realloc_freed, DOUBLE},
    {"realloc of an interior pointer", realloc_interior, INVALID},
};

enum outcome { SURVIVED, ABORT_REPORTED, ABORT_OTHER, CRASHED };

static enum outcome run_child(void (*fn)(void), char *msg, size_t cap) {
    int fds[2];
    if (pipe(fds) != 0) return CRASHED;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while (len + 1 < cap && (n = read(fds[0], msg + len, cap - 1 - len)) > 0) len += (size_t)n;
    msg[len] = 0;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status)) return SURVIVED;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT)
        return strstr(msg, "liballoc: fatal:") ? ABORT_REPORTED : ABORT_OTHER;
    return CRASHED;
}

int main(int argc, char **argv) {
    if (argc != 2 || (strcmp(argv[1], "shim") && strcmp(argv[1], "glibc"))) {
        fprintf(stderr, "usage: %s shim|glibc\n", argv[0]);
        return 2;
    }
    int shim = strcmp(argv[1], "shim") == 0;
    int caught = 0, total = (int)(sizeof scenarios / sizeof *scenarios);
    for (int i = 0; i < total; i++) {
        char msg[1024];
        enum outcome o = run_child(scenarios[i].run, msg, sizeof msg);
        char *nl = strchr(msg, '\n');
        if (nl) *nl = 0;
        static const char *what[] = {"not detected", "aborted with report", "aborted",
                                     "crashed (signal)"};
        printf("  %-36s %-20s %s\n", scenarios[i].name, what[o], msg);
        if (o == ABORT_REPORTED || o == ABORT_OTHER) caught++;
        if (shim) {
            CHECK(o == ABORT_REPORTED);
            if (!strstr(msg, scenarios[i].report))
                printf("  %-36s the report should say \"%s\"\n", "", scenarios[i].report);
            CHECK(strstr(msg, scenarios[i].report) != NULL);
        }
    }
    printf("  %s stops %d of %d misuses with abort()\n", shim ? "liballoc" : "glibc", caught,
           total);
    char name[64];
    snprintf(name, sizeof name, "preload_misuse (%s)", argv[1]);
    return check_summary(name);
}
