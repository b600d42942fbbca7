/*
 * debug_tls.c: the debug allocator's per-thread cache (the thread's stack
 * bounds [lo, lo + span) and kernel id), in static TLS.
 *
 * The initial-exec model puts it at a fixed offset from the thread pointer
 * in every thread, so a stack capture reads it relative to %fs without
 * calling __tls_get_addr (src/diag/trace.rs learns the offset
 * once from this slot's address). Internal symbols: not part of the API
 * and not exported from liballoc.so.
 */
#include <stdint.h>

struct liballoc_debug_thread {
    uintptr_t lo;
    uintptr_t span;
    uint32_t tid;
};

extern _Thread_local struct liballoc_debug_thread liballoc_debug_thread;
__attribute__((visibility("hidden"), tls_model("initial-exec")))
_Thread_local struct liballoc_debug_thread liballoc_debug_thread;

struct liballoc_debug_thread *liballoc_debug_thread_slot(void);

struct liballoc_debug_thread *liballoc_debug_thread_slot(void) { return &liballoc_debug_thread; }
