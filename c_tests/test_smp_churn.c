/*
 * test_smp_churn: 10,000 short-lived threads, in waves of 16, each allocate
 * through la_smp_allocator, free most of their blocks and leave some for the
 * main thread to free after they exited (so their segments are abandoned
 * and must be reclaimed). Afterwards memory must stay bounded:
 *   - no block is counted live, and the main heap is consistent;
 *   - at most 64 heaps were ever needed (heaps of exited threads are reused);
 *   - committed memory after la_smp_collect() is below 8 MiB, and the peak
 *     committed memory stays below 32 MiB (10,000 threads x 64 KiB pages
 *     each would be 640 MiB if pages were not reused).
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "liballoc.h"

#define THREADS 10000
#define WAVE 16
#define KEEP 4

static la_allocator A;
static void *kept[WAVE][KEEP];
static size_t kept_len[WAVE][KEEP];

static void *worker(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg;
    void *mine[32];
    size_t len[32];
    for (unsigned i = 0; i < 32; i++) {
        len[i] = 8 + ((id * 131u + i * 977u) % 20000);
        mine[i] = la_alloc(A, 1, len[i], 16);
        if (mine[i]) memset(mine[i], (int)i, len[i]);
    }
    for (unsigned i = KEEP; i < 32; i++) la_free(A, mine[i], 1, len[i], 16);
    for (unsigned i = 0; i < KEEP; i++) {
        kept[id % WAVE][i] = mine[i];
        kept_len[id % WAVE][i] = len[i];
    }
    return NULL;
}

int main(void) {
    A = la_smp_allocator();
    unsigned failed_create = 0;
    for (unsigned base = 0; base < THREADS; base += WAVE) {
        pthread_t t[WAVE];
        for (unsigned i = 0; i < WAVE; i++)
            if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(base + i)) != 0)
                failed_create++;
        for (unsigned i = 0; i < WAVE; i++) pthread_join(t[i], NULL);
        for (unsigned i = 0; i < WAVE; i++)
            for (unsigned k = 0; k < KEEP; k++) {
                CHECK(kept[i][k] != NULL);
                la_free(A, kept[i][k], 1, kept_len[i][k], 16);
                kept[i][k] = NULL;
            }
    }
    CHECK_EQ_SZ(failed_create, 0);
    la_smp_collect();
    CHECK_EQ_SZ(la_smp_check_heap(), 0);
    la_smp_stats st;
    la_smp_get_stats(&st);
    CHECK_EQ_SZ(st.current_count, 0);
    CHECK(st.heaps <= 64);
    CHECK(st.committed_bytes < (8u << 20));
    CHECK(st.peak_committed_bytes < (32u << 20));
    printf("churn: %zu heaps, committed %zu KiB (peak %zu KiB), %llu blocks\n", st.heaps,
           st.committed_bytes >> 10, st.peak_committed_bytes >> 10,
           (unsigned long long)st.total_count);
    return check_summary("test_smp_churn");
}
