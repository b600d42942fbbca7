/*
 * tls_slot.h: defines one static-TLS variable and the function that
 * returns its address in the calling thread (src/sys/tls.rs learns the
 * variable's offset from the thread pointer from that address).
 *
 * The initial-exec model puts the variable at a fixed offset from the
 * thread pointer in every thread, so Rust reaches it relative to %fs
 * without calling __tls_get_addr. A new thread's copy starts zeroed, or
 * as the initialiser of LIBALLOC_TLS_SLOT_INIT says. The
 * symbols are internal: hidden, and not exported from liballoc.so.
 */
#ifndef LIBALLOC_TLS_SLOT_H
#define LIBALLOC_TLS_SLOT_H

/* `type name` in static TLS, and `type *slot_fn(void)` returning its
 * address. */
#define LIBALLOC_TLS_SLOT(type, name, slot_fn)                                   \
    extern _Thread_local type name;                                              \
    __attribute__((visibility("hidden"), tls_model("initial-exec")))             \
    _Thread_local type name;                                                     \
    type *slot_fn(void);                                                         \
    type *slot_fn(void) { return &name; }

/* The same, with every thread's copy starting as `init` (an address
 * constant: the dynamic linker relocates the TLS image before any thread's
 * copy is made from it). */
#define LIBALLOC_TLS_SLOT_INIT(type, name, slot_fn, init)                        \
    extern _Thread_local type name;                                              \
    __attribute__((visibility("hidden"), tls_model("initial-exec")))             \
    _Thread_local type name = (init);                                            \
    type *slot_fn(void);                                                         \
    type *slot_fn(void) { return &name; }

#endif
