/*
 * cxx_new.c: the C++ operator new family of liballoc_preload.so (every
 * variant: plain, array, aligned, nothrow), under its Itanium-ABI mangled
 * names.
 *
 * The fast path is one call to la_preload_cxx_alloc (Rust, src/preload/
 * cxx.rs). On failure the standard's loop runs: while a std::new_handler
 * is installed, call it and retry; without one, the throwing variants throw
 * std::bad_alloc through libstdc++'s std::__throw_bad_alloc() and the
 * nothrow variants return NULL. Both libstdc++ functions are weak
 * references, so C programs need no C++ runtime; when none is loaded the
 * throwing variants report "liballoc: fatal: out of memory in operator new"
 * and abort (what mimalloc's C build always does).
 *
 * This file is C rather than Rust because the exception must propagate
 * through these frames: it is compiled with -fexceptions, whereas a Rust
 * frame of a panic=abort build stops any unwinding with an abort. A
 * new_handler that throws propagates out of the nothrow variants too (C
 * cannot catch); the standard handlers do not throw from nothrow new.
 */
#include <stddef.h>

void *la_preload_cxx_alloc(size_t size, size_t align);
_Noreturn void la_preload_cxx_oom(size_t size);

typedef void (*la_new_handler)(void);
/* std::get_new_handler() and std::__throw_bad_alloc() from libstdc++. */
extern la_new_handler _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

/* Prototypes: the mangled names are the C++ ABI, not C declarations
 * anyone includes. */
void *_Znwm(size_t size);
void *_Znam(size_t size);
void *_ZnwmRKSt9nothrow_t(size_t size, const void *nt);
void *_ZnamRKSt9nothrow_t(size_t size, const void *nt);
void *_ZnwmSt11align_val_t(size_t size, size_t align);
void *_ZnamSt11align_val_t(size_t size, size_t align);
void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *nt);
void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *nt);

__attribute__((noinline, cold)) static void *new_failed(size_t size, size_t align, int nothrow) {
    for (;;) {
        la_new_handler handler = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
        if (handler == NULL) {
            if (nothrow)
                return NULL;
            if (_ZSt17__throw_bad_allocv)
                _ZSt17__throw_bad_allocv();
            la_preload_cxx_oom(size);
        }
        handler();
        void *p = la_preload_cxx_alloc(size, align);
        if (p != NULL)
            return p;
    }
}

static inline void *new_impl(size_t size, size_t align, int nothrow) {
    void *p = la_preload_cxx_alloc(size, align);
    if (__builtin_expect(p != NULL, 1))
        return p;
    return new_failed(size, align, nothrow);
}

void *_Znwm(size_t size) { return new_impl(size, 0, 0); }
void *_Znam(size_t size) { return new_impl(size, 0, 0); }
void *_ZnwmRKSt9nothrow_t(size_t size, const void *nt) { (void)nt; return new_impl(size, 0, 1); }
void *_ZnamRKSt9nothrow_t(size_t size, const void *nt) { (void)nt; return new_impl(size, 0, 1); }
void *_ZnwmSt11align_val_t(size_t size, size_t align) { return new_impl(size, align, 0); }
void *_ZnamSt11align_val_t(size_t size, size_t align) { return new_impl(size, align, 0); }
void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *nt) {
    (void)nt;
    return new_impl(size, align, 1);
}
void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *nt) {
    (void)nt;
    return new_impl(size, align, 1);
}
