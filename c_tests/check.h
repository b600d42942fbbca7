/*
 * check.h: the tiny test harness every C test uses.
 *
 * CHECK(cond) records a pass or prints the failing condition with its
 * file:line and records a failure; CHECK_EQ_SZ compares two sizes and shows
 * both. check_summary() prints the closing "N passed, N failed" line,
 * repeats the first failures just above it (so they survive in a log that
 * keeps only its tail) and returns the exit status (0 only when nothing
 * failed). Header-only; the counters are per test program.
 */
#ifndef LA_CHECK_H
#define LA_CHECK_H

#include <stdio.h>
#include <stddef.h>

static unsigned long check_passed_;
static unsigned long check_failed_;

/* The first failures, kept for the summary (string literals only). */
enum { CHECK_KEEP_ = 16 };
static struct {
    const char *file, *what;
    int line;
} check_kept_[CHECK_KEEP_];

static inline void check_fail_(const char *file, int line, const char *what) {
    if (check_failed_ < CHECK_KEEP_) {
        check_kept_[check_failed_].file = file;
        check_kept_[check_failed_].line = line;
        check_kept_[check_failed_].what = what;
    }
    check_failed_++;
}

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (cond) {                                                                 \
            check_passed_++;                                                        \
        } else {                                                                    \
            check_fail_(__FILE__, __LINE__, #cond);                                 \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

#define CHECK_EQ_SZ(a, b)                                                                 \
    do {                                                                                  \
        size_t check_a_ = (size_t)(a), check_b_ = (size_t)(b);                             \
        if (check_a_ == check_b_) {                                                       \
            check_passed_++;                                                              \
        } else {                                                                          \
            check_fail_(__FILE__, __LINE__, #a " == " #b);                                \
            fprintf(stderr, "%s:%d: check failed: %s == %s (%zu != %zu)\n", __FILE__,       \
                    __LINE__, #a, #b, check_a_, check_b_);                                 \
        }                                                                                 \
    } while (0)

static inline unsigned long check_failures(void) { return check_failed_; }

/* Prints "<name>: N passed, N failed" and returns the exit status. */
static inline int check_summary(const char *name) {
    fflush(stdout);
    for (unsigned long i = 0; i < check_failed_ && i < CHECK_KEEP_; i++)
        fprintf(stderr, "%s: failed: %s:%d: %s\n", name, check_kept_[i].file, check_kept_[i].line,
                check_kept_[i].what);
    fflush(stderr);
    printf("%s: %lu passed, %lu failed\n", name, check_passed_, check_failed_);
    return check_failed_ == 0 ? 0 : 1;
}

#endif
