/*
 * prof_tls.c: the heap profiler's per-thread sampler state (the bytes left
 * before the next sample, the random generator's state and a re-entrancy
 * guard), in static TLS (tls_slot.h), so that the shim's allocation path
 * reaches it without calling __tls_get_addr (src/preload/profile.rs). A new
 * thread starts with every field zero, which the sampler reads as "not
 * seeded yet".
 */
#include <stdint.h>

#include "tls_slot.h"

/* 16 bytes, aligned to 16: one cache line, never two (a sample reads both
 * fields, and samples are rare enough that the line is cold each time). */
struct liballoc_prof_thread {
    _Alignas(16) uint64_t rng;
    uint32_t busy;
};

LIBALLOC_TLS_SLOT(struct liballoc_prof_thread, liballoc_prof_thread, liballoc_prof_thread_slot)
