/*
 * smp_tls.c: the smp allocator's per-thread heap slot, in static TLS
 * (tls_slot.h). The Rust fast paths read it with two instructions (the
 * offset from the GOT, then a load relative to %fs), naming the symbol in
 * inline assembly; other paths use its address. Neither calls
 * __tls_get_addr (src/allocators/smp/thread.rs). Every thread's slot
 * starts as the address of the empty heap, never null.
 */
#include "tls_slot.h"

/* src/allocators/smp/thread.rs's EMPTY_HEAP: the slot of a thread that has
 * no heap of its own points at it. */
extern char liballoc_smp_empty_heap[];

LIBALLOC_TLS_SLOT_INIT(void *, liballoc_smp_heap_slot, liballoc_smp_tls_slot,
                       liballoc_smp_empty_heap)
