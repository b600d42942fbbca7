/* Seeded bug: two 48-byte blocks leaked by a callback that a function
 * without a frame pointer calls, as code of Debian's C library calls back
 * into a program (qsort, bsearch), from two callers. `through_nofp` keeps a value in rbp that is not
 * a frame, so the frame-pointer walk stops at it; its unwind table entry
 * (.cfi directives) tells the call-frame unwinder where its caller is.
 * With LA_DEBUG_UNWIND=tables the leak's trace goes on to `main`; with
 * `fp` it ends in `through_nofp`. x86-64 only (run_tests.sh skips it
 * elsewhere). */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

/* void through_nofp(void (*fn)(void)): calls fn with rbp = 0x1234. */
void through_nofp(void (*fn)(void));
#if defined(__x86_64__)
__asm__(".text\n"
        ".globl through_nofp\n"
        ".type through_nofp, @function\n"
        "through_nofp:\n"
        ".cfi_startproc\n"
        "    push %rbp\n"
        ".cfi_def_cfa_offset 16\n"
        ".cfi_offset %rbp, -16\n"
        "    movq $0x1234, %rbp\n"
        "    call *%rdi\n"
        "    pop %rbp\n"
        ".cfi_def_cfa_offset 8\n"
        ".cfi_restore %rbp\n"
        "    ret\n"
        ".cfi_endproc\n"
        ".size through_nofp, .-through_nofp\n");
#else
void through_nofp(void (*fn)(void)) { fn(); }
#endif

static void *volatile kept;
static volatile int leak_now;

/* Frees its block, but for one call from each caller. */
static NOINLINE void callback(void) {
    void *p = malloc(48);
    if (leak_now) {
        kept = p;
        kept = NULL;
    } else {
        free(p);
    }
    KEEP();
}

/* Two callers alike (the same frame size): the walk stops at the same
 * place under both, and only the words above it tell them apart. Each
 * goes through the frame without a frame pointer 100 times. */
static NOINLINE void caller_a(void) {
    for (int i = 0; i < 100; i++) {
        leak_now = i == 50;
        through_nofp(callback);
    }
    KEEP();
}

static NOINLINE void caller_b(void) {
    for (int i = 0; i < 100; i++) {
        leak_now = i == 70;
        through_nofp(callback);
    }
    KEEP();
}

int main(void) {
    caller_a();
    caller_b();
    clobber_stack();
    printf("done\n");
    return 0;
}
