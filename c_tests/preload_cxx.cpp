// preload_cxx.cpp: a C++ program on the preloaded operator new/delete.
//
// STL containers, new/delete and new[]/delete[], over-aligned types
// (aligned new/delete), sized delete, nothrow new; a failing operator new
// must throw std::bad_alloc (nothrow must return nullptr) and must run an
// installed new_handler first. Prints a checksum that run_tests.sh compares
// with a run on plain glibc, then "N passed, N failed".
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

static unsigned passed, failed;
#define CHECK(c) ((c) ? (void)++passed : (void)(++failed, std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c)))

struct alignas(128) Wide {
    double v[4];
};

struct Node {
    Node *next;
    std::string name;
};

static int handler_calls;
static void handler() {
    ++handler_calls;
    if (handler_calls >= 2) std::set_new_handler(nullptr);
}

int main() {
    std::uint64_t sum = 0;
    std::vector<std::string> words;
    for (int i = 0; i < 20000; i++) words.push_back("word-" + std::to_string(i * 7919 % 10007));
    std::map<std::string, int> counts;
    std::unordered_map<int, std::vector<int>> buckets;
    for (const auto &w : words) {
        counts[w]++;
        buckets[static_cast<int>(w.size())].push_back(static_cast<int>(w[5]));
    }
    for (const auto &kv : counts) sum += kv.second * kv.first.size();
    for (const auto &kv : buckets) sum += kv.second.size() * static_cast<unsigned>(kv.first);

    Node *head = nullptr;
    for (int i = 0; i < 10000; i++) head = new Node{head, std::to_string(i)};
    while (head) {
        Node *n = head->next;
        sum += head->name.size();
        delete head;
        head = n;
    }
    for (int i = 1; i < 200; i++) {
        int *a = new int[static_cast<std::size_t>(i) * 37];
        a[i] = i;
        sum += static_cast<std::uint64_t>(a[i]);
        delete[] a;
    }
    std::vector<std::unique_ptr<Wide>> wide;
    for (int i = 0; i < 100; i++) {
        wide.emplace_back(new Wide{});
        CHECK(reinterpret_cast<std::uintptr_t>(wide.back().get()) % 128 == 0);
    }
    Wide *wa = new Wide[7];
    CHECK(reinterpret_cast<std::uintptr_t>(wa) % 128 == 0);
    delete[] wa;

    volatile std::size_t huge = static_cast<std::size_t>(PTRDIFF_MAX) + 1;
    bool threw = false;
    try {
        void *p = ::operator new(huge);
        ::operator delete(p);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw);
    threw = false;
    try {
        void *p = ::operator new[](huge, std::align_val_t(64));
        ::operator delete[](p, std::align_val_t(64));
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw);
    CHECK(::operator new(huge, std::nothrow) == nullptr);
    CHECK(::operator new[](huge, std::align_val_t(32), std::nothrow) == nullptr);

    // The new_handler runs before the failure is reported.
    std::set_new_handler(handler);
    threw = false;
    try {
        void *p = ::operator new(huge);
        ::operator delete(p);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw && handler_calls == 2);

    void *z = ::operator new(0);
    CHECK(z != nullptr);
    ::operator delete(z, static_cast<std::size_t>(0));

    std::printf("checksum %llu\n", static_cast<unsigned long long>(sum));
    std::printf("preload_cxx: %u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}
