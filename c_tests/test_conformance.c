/*
 * test_conformance: the shared conformance suite (conformance.h) run against
 * every allocator of the core library in the registry (registry.h).
 */
#define _POSIX_C_SOURCE 200809L

#include "check.h"
#include "conformance.h"
#include "registry.h"

static void conform(const char *name, la_allocator a) { conformance_run(name, a); }

int main(void) {
    registry_each(REGISTRY_CORE, conform);
    return check_summary("test_conformance");
}
