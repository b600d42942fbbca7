/*
 * test_conformance: the shared conformance suite (conformance.h) run against
 * every allocator of the core library.
 */
#include "check.h"
#include "conformance.h"

int main(void) {
    conformance_run("page", la_page_allocator());
    conformance_run("c", la_c_allocator());
    conformance_run("smp", la_smp_allocator());
    return check_summary("test_conformance");
}
