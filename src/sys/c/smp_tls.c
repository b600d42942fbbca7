/*
 * smp_tls.c: the smp allocator's per-thread heap slot, in static TLS
 * (tls_slot.h). The Rust fast paths read it with two instructions (the
 * offset from the GOT, then a load relative to %fs), naming the symbol in
 * inline assembly; other paths use its address. Neither calls
 * __tls_get_addr (src/allocators/smp/thread.rs).
 */
#include "tls_slot.h"

LIBALLOC_TLS_SLOT(void *, liballoc_smp_heap_slot, liballoc_smp_tls_slot)
