/*
 * prof_tls.c: the heap profiler's per-thread sampler state (the bytes left
 * before the next sample, the random generator's state and a re-entrancy
 * guard), in static TLS.
 *
 * The initial-exec model puts it at a fixed offset from the thread pointer
 * in every thread, so the shim's allocation path reaches it without calling
 * __tls_get_addr (src/preload/profile.rs learns the offset once from this
 * slot's address). A new thread starts with every field zero, which the
 * sampler reads as "not seeded yet". Internal symbols: not part of the API
 * and not exported from liballoc.so.
 */
#include <stdint.h>

struct liballoc_prof_thread {
    int64_t left;
    uint64_t rng;
    uint32_t busy;
};

extern _Thread_local struct liballoc_prof_thread liballoc_prof_thread;
__attribute__((visibility("hidden"), tls_model("initial-exec")))
_Thread_local struct liballoc_prof_thread liballoc_prof_thread;

struct liballoc_prof_thread *liballoc_prof_thread_slot(void);

struct liballoc_prof_thread *liballoc_prof_thread_slot(void) { return &liballoc_prof_thread; }
