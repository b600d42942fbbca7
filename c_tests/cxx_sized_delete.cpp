// cxx_sized_delete.cpp: C++ sized and aligned operator delete given the
// size and alignment the block was made with, or wrong ones (seeded bugs).
//
//   ok        right sizes and alignments: runs clean, exits 0
//   size      a 40-byte block deleted as 36 bytes
//   big       a 40-byte block deleted as 4096 bytes (more than any block
//             of its size class holds)
//   align     a 64-aligned block deleted as 32-aligned
//   align-only  the same, through aligned delete without a size
#include <cstdio>
#include <cstring>
#include <new>

#define NOINLINE __attribute__((noinline))

static NOINLINE void release_sized(void *p, std::size_t n) {
    ::operator delete(p, n);
    __asm__ volatile("" ::: "memory");
}

static NOINLINE void release_aligned(void *p, std::size_t n, std::size_t a) {
    ::operator delete(p, n, std::align_val_t(a));
    __asm__ volatile("" ::: "memory");
}

static NOINLINE void release_aligned_only(void *p, std::size_t a) {
    ::operator delete(p, std::align_val_t(a));
    __asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "ok";
    if (std::strcmp(mode, "ok") == 0) {
        for (std::size_t n = 0; n < 300; n += 7) release_sized(::operator new(n), n);
        for (std::size_t a = 1; a <= 4096; a *= 2)
            release_aligned(::operator new(100, std::align_val_t(a)), 100, a);
        void *p = ::operator new[](24, std::align_val_t(64));
        ::operator delete[](p, std::align_val_t(64));
        p = ::operator new[](1000);
        ::operator delete[](p, 1000);
        std::puts("sized deletes ok");
        return 0;
    }
    if (std::strcmp(mode, "size") == 0) release_sized(::operator new(40), 36);
    if (std::strcmp(mode, "big") == 0) release_sized(::operator new(40), 4096);
    if (std::strcmp(mode, "align") == 0) release_aligned(::operator new(64, std::align_val_t(64)), 64, 32);
    if (std::strcmp(mode, "align-only") == 0) release_aligned_only(::operator new(64, std::align_val_t(64)), 32);
    std::puts("not caught");
    return 0;
}
