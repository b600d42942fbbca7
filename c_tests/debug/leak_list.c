/* Seeded bug: a list, a 48-byte head (make_head) holding three 24-byte
 * nodes (make_node), is never freed. The head is the direct leak, the
 * nodes are indirect. With the argument "cycle", two 40-byte blocks that
 * point to each other leak as well (indirect both, nothing else points to
 * them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

struct node {
    struct node *next;
    long value;
    long spare;
};

struct list {
    struct node *first;
    long count;
    char name[32];
};

static NOINLINE struct node *make_node(struct node *next, long value) {
    struct node *n = malloc(sizeof *n);
    if (!n) exit(1);
    n->next = next;
    n->value = value;
    n->spare = 0;
    KEEP();
    return n;
}

static NOINLINE struct list *make_head(void) {
    struct list *l = malloc(sizeof *l);
    if (!l) exit(1);
    memset(l, 0, sizeof *l);
    strcpy(l->name, "numbers");
    KEEP();
    return l;
}

static NOINLINE void make_cycle(void) {
    void **a = malloc(40), **b = malloc(40);
    if (!a || !b) exit(1);
    memset(a, 0, 40);
    memset(b, 0, 40);
    a[0] = b;
    b[0] = a;
    KEEP();
}

static NOINLINE void build(void) {
    struct list *l = make_head();
    for (long i = 0; i < 3; i++) {
        l->first = make_node(l->first, i);
        l->count++;
    }
    printf("%s: %ld nodes\n", l->name, l->count);
}

int main(int argc, char **argv) {
    build();
    if (argc > 1 && strcmp(argv[1], "cycle") == 0) make_cycle();
    clobber_stack();
    return 0;
}
