/* Known allocation sites for la-prof's tests. Calls nothing like malloc:
 * each site records the return addresses a sampled malloc would see (the
 * site's own, then its caller's), and the program prints them with its
 * executable mappings, for a script to make a raw profile from. */
#include <stdio.h>
#include <string.h>

#include "sites.h"

void *ra_site[4], *ra_main[4];

/* Stands where malloc would: records the return address into the site. */
__attribute__((noinline)) void alloc_point(int site, void *caller)
{
    ra_site[site] = __builtin_return_address(0);
    ra_main[site] = caller;
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void churn_freed(void)
{
    alloc_point(0, __builtin_return_address(0));
}

__attribute__((noinline)) void keep_live(void)
{
    alloc_point(1, __builtin_return_address(0));
}

int main(void)
{
    churn_freed();
    keep_live();
    leak_in_lib(2); /* in libsites.so, built without frame pointers */

    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps)
        return 1;
    char line[4096];
    while (fgets(line, sizeof line, maps)) {
        char perms[8], path[4000];
        unsigned long start, end, off;
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %3999[^\n]", &start, &end, perms, &off, path) == 5 &&
            perms[2] == 'x' && path[0] == '/')
            printf("map %lx-%lx %s %lx %s\n", start, end, perms, off, path);
    }
    fclose(maps);
    const char *names[] = {"churn_freed", "keep_live", "leak_in_lib"};
    for (int i = 0; i < 3; i++)
        printf("site %s %p %p\n", names[i], ra_site[i], ra_main[i]);
    return 0;
}
