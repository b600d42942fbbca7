/*
 * diag_tls.c: the diagnostics runtime's per-thread cache (the thread's
 * stack bounds [lo, lo + span) and kernel id), in static TLS (tls_slot.h),
 * so that a stack capture reads it relative to %fs without calling
 * __tls_get_addr (src/diag/trace.rs). A new thread's copy starts zeroed,
 * which reads as "nothing known yet".
 */
#include <stdint.h>

#include "tls_slot.h"

struct liballoc_diag_thread {
    uintptr_t lo;
    uintptr_t span;
    uint32_t tid;
};

LIBALLOC_TLS_SLOT(struct liballoc_diag_thread, liballoc_diag_thread, liballoc_diag_thread_slot)
