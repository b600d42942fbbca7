/* A clean program: stdio, strdup, realloc, calloc, threads-free; under
 * la-run --debug it must report nothing and exit 0. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *cache; /* held in a global until exit: reachable, not a leak */

int main(void) {
    cache = malloc(4096);
    strcpy(cache, "cached");
    char *s = strdup("hello");
    char *buf = NULL;
    size_t n = 0;
    for (int i = 0; i < 1000; i++) {
        buf = realloc(buf, n + 16);
        n += 16;
        buf[n - 1] = (char)i;
    }
    int *z = calloc(100, sizeof *z);
    time_t t = 0;
    struct tm *tm = localtime(&t);
    printf("%s %s %d %zu %d\n", s, cache, z[50], n, tm ? tm->tm_year : 0);
    fprintf(stderr, "stderr works too\n");
    free(z);
    free(buf);
    free(s);
    return 0;
}
