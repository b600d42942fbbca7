/*
 * heap_profile.c: a program with a few allocation sites whose memory grows
 * and shrinks over about four seconds, to profile with the shim:
 *
 *   cc -O1 -g -o heap_profile examples/heap_profile.c
 *   LA_PROFILE_INTERVAL=1 la-run --profile=heap.raw ./heap_profile
 *   la-prof heap.raw --flame-live live.svg --chart live.png --top
 *
 * load_records keeps a growing table of small records, build_index a few
 * large arrays that are rebuilt and dropped, and parse_messages churns
 * short-lived buffers (allocated, never live for long). It uses plain
 * malloc/free: any program runs under the profiler unchanged.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { STEPS = 40, RECORDS_PER_STEP = 2000, INDEX_SLOTS = 8 };

struct record {
    int id;
    char name[120];
};

static struct record *records[STEPS * RECORDS_PER_STEP];
static int nrecords;
static double *index_arrays[INDEX_SLOTS];

static void load_records(void) {
    for (int i = 0; i < RECORDS_PER_STEP; i++) {
        struct record *r = malloc(sizeof *r);
        if (!r) exit(1);
        r->id = nrecords;
        snprintf(r->name, sizeof r->name, "record %d", nrecords);
        records[nrecords++] = r;
    }
}

static void build_index(int step) {
    int slot = step % INDEX_SLOTS;
    free(index_arrays[slot]);
    size_t n = (size_t)(64 + 16 * step) << 10; /* grows with the table */
    index_arrays[slot] = malloc(n * sizeof(double));
    if (!index_arrays[slot]) exit(1);
    memset(index_arrays[slot], 0, n * sizeof(double));
}

static size_t parse_messages(void) {
    size_t sum = 0;
    for (int i = 0; i < 500; i++) {
        char *volatile buf = malloc(256 + (size_t)(i % 7) * 512);
        if (!buf) exit(1);
        buf[0] = (char)i;
        sum += (unsigned char)buf[0];
        free(buf);
    }
    return sum;
}

int main(void) {
    struct timespec pause = {0, 100 * 1000 * 1000};
    size_t sum = 0;
    for (int step = 0; step < STEPS; step++) {
        load_records();
        build_index(step);
        sum += parse_messages();
        if (step == 3 * STEPS / 4) {
            /* Drop the older half of the table. */
            for (int i = 0; i < nrecords / 2; i++) {
                free(records[i]);
                records[i] = NULL;
            }
        }
        nanosleep(&pause, NULL);
    }
    /* The table and the index stay live to the end, so the profile written
     * at exit shows them. */
    printf("%d records, checksum %zu\n", nrecords, sum);
    return 0;
}
