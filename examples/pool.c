/*
 * pool.c: a memory pool for many objects of one type (a linked list here).
 *
 * Creating and destroying an item is O(1): freed items are recycled
 * first. la_pool_reset drops every item at once, keeping the memory for
 * the next round.
 */
#include <stdio.h>

#include "liballoc.h"

typedef struct node {
    struct node *next;
    int value;
} node;

int main(void) {
    la_pool *pool = la_pool_create(la_smp_allocator(), sizeof(node), _Alignof(node));
    if (pool == NULL) return 1;
    la_pool_preheat(pool, 1000); /* one chunk for the first 1000 items */

    for (int round = 0; round < 3; round++) {
        node *head = NULL;
        for (int i = 0; i < 1000; i++) {
            node *n = la_pool_create_item(pool);
            if (n == NULL) return 1;
            n->value = i;
            n->next = head;
            head = n;
        }
        long sum = 0;
        for (node *n = head; n != NULL; n = n->next) sum += n->value;
        /* Drop the whole list at once; the memory stays for next round. */
        la_pool_reset(pool, LA_ARENA_RETAIN_CAPACITY, 0);
        printf("round %d: sum %ld, pool holds %zu items\n", round, sum,
               la_pool_query_capacity(pool));
    }

    /* Single items come and go in O(1); a freed item is reused next. */
    node *a = la_pool_create_item(pool);
    la_pool_destroy_item(pool, a);
    node *b = la_pool_create_item(pool);
    printf("freed item reused: %s\n", a == b ? "yes" : "no");

    la_pool_destroy(pool);
    return 0;
}
