/*
 * smp_tls.c: the smp allocator's per-thread heap slot, in static TLS.
 *
 * The slot uses the initial-exec TLS model, so it lives at a fixed offset
 * from the thread pointer in every thread. The Rust side asks once for the
 * slot's address, subtracts the thread pointer to learn that offset, and
 * from then on reaches the slot with one load relative to %fs, without
 * calling __tls_get_addr (src/allocators/smp/thread.rs). Internal symbol:
 * not part of the API and not exported from liballoc.so.
 */
#include <stddef.h>

static _Thread_local void *smp_heap_slot __attribute__((tls_model("initial-exec")));

void **liballoc_smp_tls_slot(void);

void **liballoc_smp_tls_slot(void) { return &smp_heap_slot; }
