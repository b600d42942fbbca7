/* common.h: helpers for the seeded-bug programs (run under la-run --debug
 * by run_tests.sh). Built with -O1 -g -fno-omit-frame-pointer. */
#ifndef LA_DEBUG_BUGS_COMMON_H
#define LA_DEBUG_BUGS_COMMON_H
/* The bugs are deliberate: keep GCC's static checks from refusing them. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#endif
#define NOINLINE __attribute__((noinline))
/* Keeps a function's frame (no tail call) and its memory effects. */
#define KEEP() __asm__ volatile("" ::: "memory")
/* Overwrites dead stack below the caller, so stale pointers left there by
 * earlier calls do not keep leaked blocks reachable. */
static NOINLINE __attribute__((unused)) void clobber_stack(void) {
    volatile char buf[16384];
    for (unsigned i = 0; i < sizeof buf; i++) buf[i] = 0;
}
#endif
