/* A site in a shared library built without frame pointers. */
#include "sites.h"

__attribute__((noinline)) void leak_in_lib(int site)
{
    alloc_point(site, __builtin_return_address(0));
}
