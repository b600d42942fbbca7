/*
 * registry_export.c: the allocators of registry.h for test suites written in
 * other languages (the Zig binding's, bindings/zig/tests/tests.zig), which
 * cannot read the X-macro list: how many there are, each one's name, and
 * making and unmaking one by its index. Every X line of LA_REGISTRY is here,
 * whatever its suite, made and unmade by its own pair, so those suites run
 * every allocator under test exactly as the C programs make it.
 *
 *   size_t n = registry_count();
 *   la_allocator a;
 *   registry_entry *e = registry_make(i, &a);   // NULL: could not be made
 *   ... run the suite on a ...
 *   int ok = registry_unmake(e);                // 0: a check of unmake failed
 *
 * registry_unmake's checks (balanced counters of the failing allocator, no
 * leak in the debug allocator) print what failed on stderr, as CHECK does.
 */
#define _POSIX_C_SOURCE 200809L

#include <stddef.h>
#include <stdlib.h>

#include "liballoc.h"
#include "registry.h"

/* The exports, declared here for -Wmissing-prototypes; the Zig side
 * declares them again (bindings/zig/tests/tests.zig). */
typedef struct registry_entry registry_entry;
size_t registry_count(void);
const char *registry_name(size_t index);
registry_entry *registry_make(size_t index, la_allocator *out_allocator);
int registry_unmake(registry_entry *entry);

typedef struct {
    const char *name;
    int (*make)(registry_subject *s);
    void (*unmake)(registry_subject *s);
} registry_row;

#define REGISTRY_ROW_(id, name, suite) {name, registry_make_##id, registry_unmake_##id},
static const registry_row registry_rows[] = {LA_REGISTRY(REGISTRY_ROW_)};
#undef REGISTRY_ROW_

enum { REGISTRY_ROWS = sizeof registry_rows / sizeof registry_rows[0] };

/* A made allocator and the row that unmakes it. */
struct registry_entry {
    registry_subject subject;
    const registry_row *row;
};

/* The number of allocators in LA_REGISTRY. */
size_t registry_count(void) { return REGISTRY_ROWS; }

/* The name of allocator `index` (its X line's), or NULL past the end. */
const char *registry_name(size_t index) {
    return index < REGISTRY_ROWS ? registry_rows[index].name : NULL;
}

/* Makes allocator `index` and writes it to *out_allocator; NULL if index is
 * past the end or it could not be made (then nothing is left to unmake). */
registry_entry *registry_make(size_t index, la_allocator *out_allocator) {
    if (index >= REGISTRY_ROWS || !out_allocator) return NULL;
    registry_entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->row = &registry_rows[index];
    if (!e->row->make(&e->subject)) {
        free(e);
        return NULL;
    }
    *out_allocator = e->subject.a;
    return e;
}

/* Unmakes an allocator made by registry_make; returns 1 when the checks of
 * its unmake passed, 0 when one failed. NULL does nothing and returns 1. */
int registry_unmake(registry_entry *entry) {
    if (!entry) return 1;
    unsigned long before = check_failures();
    entry->row->unmake(&entry->subject);
    free(entry);
    return check_failures() == before;
}
