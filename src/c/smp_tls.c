/*
 * smp_tls.c: the smp allocator's per-thread heap slot, in static TLS.
 *
 * The slot uses the initial-exec TLS model, so it lives at a fixed offset
 * from the thread pointer in every thread. The Rust fast paths read it with
 * two instructions (the offset from the GOT, then a load relative to %fs),
 * naming the symbol in inline assembly; other paths use its address.
 * Neither calls __tls_get_addr (src/allocators/smp/thread.rs). Internal
 * symbols: not part of the API and not exported from liballoc.so.
 */
#include <stddef.h>

extern _Thread_local void *liballoc_smp_heap_slot;
__attribute__((visibility("hidden"), tls_model("initial-exec")))
_Thread_local void *liballoc_smp_heap_slot;

void **liballoc_smp_tls_slot(void);

void **liballoc_smp_tls_slot(void) { return &liballoc_smp_heap_slot; }
