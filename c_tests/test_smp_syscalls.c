/*
 * test_smp_syscalls: the system-call counters of la_smp_stats.
 *   - a 64 MiB block (a huge block, its own mapping) costs at least one
 *     mmap call; after it is freed, la_smp_collect() unmaps it (the freed
 *     mapping waits in a cache until then): munmap_calls grows;
 *   - small blocks filling several pages, freed, then la_smp_collect():
 *     their pages are decommitted, so madvise_calls and purged_bytes grow
 *     (purged_bytes by at least one page);
 *   - the counters never go down.
 */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "liballoc.h"

#define SMALL 2000
#define SMALL_LEN 1000

static la_smp_stats snap(void) {
    la_smp_stats s;
    memset(&s, 0, sizeof s);
    la_smp_get_stats(&s);
    return s;
}

static int monotonic(const la_smp_stats *a, const la_smp_stats *b) {
    return b->mmap_calls >= a->mmap_calls && b->munmap_calls >= a->munmap_calls &&
           b->madvise_calls >= a->madvise_calls && b->mremap_calls >= a->mremap_calls &&
           b->purged_bytes >= a->purged_bytes;
}

int main(void) {
    la_allocator A = la_smp_allocator();
    la_smp_stats s0 = snap();

    const size_t huge = (size_t)64 << 20;
    char *p = la_alloc(A, 1, huge, 16);
    CHECK(p != NULL);
    if (p) {
        p[0] = 1;
        p[huge - 1] = 2;
    }
    la_smp_stats s1 = snap();
    CHECK(s1.mmap_calls > s0.mmap_calls);
    CHECK(monotonic(&s0, &s1));
    if (p) la_free(A, p, 1, huge, 16);
    la_smp_collect();
    la_smp_stats s2 = snap();
    CHECK(s2.munmap_calls > s1.munmap_calls);
    CHECK(monotonic(&s1, &s2));

    static void *small[SMALL];
    for (int i = 0; i < SMALL; i++) {
        small[i] = la_alloc(A, 1, SMALL_LEN, 16);
        CHECK(small[i] != NULL);
        if (small[i]) memset(small[i], 0x5a, SMALL_LEN);
    }
    for (int i = 0; i < SMALL; i++)
        if (small[i]) la_free(A, small[i], 1, SMALL_LEN, 16);
    la_smp_collect();
    la_smp_stats s3 = snap();
    CHECK(s3.madvise_calls > s2.madvise_calls);
    CHECK(s3.purged_bytes >= s2.purged_bytes + (uint64_t)sysconf(_SC_PAGESIZE));
    CHECK(monotonic(&s2, &s3));

    printf("mmap %llu, munmap %llu, madvise %llu, mremap %llu, purged %llu KiB\n",
           (unsigned long long)s3.mmap_calls, (unsigned long long)s3.munmap_calls,
           (unsigned long long)s3.madvise_calls, (unsigned long long)s3.mremap_calls,
           (unsigned long long)(s3.purged_bytes >> 10));
    return check_summary("test_smp_syscalls");
}
