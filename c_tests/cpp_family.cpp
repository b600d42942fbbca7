/*
 * cpp_family: the C++ header (include/liballoc.hpp) on every allocator.
 *
 * std::pmr containers through la::memory_resource and classic containers
 * through la::stl_allocator on each general allocator; the RAII owners
 * (arena, pool, thread_safe, logging, failing, debug, buffer_first);
 * std::bad_alloc on out of memory. Built with -std=c++17 -Wall -Wextra
 * -Werror, run plainly and under AddressSanitizer (mk/family.mk).
 */
#include <fcntl.h>
#include <unistd.h>

#include <list>
#include <map>
#include <memory_resource>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "liballoc.hpp"

namespace {

/* pmr containers on an la_allocator. */
void pmr_containers(const char *name, la_allocator a) {
    la::memory_resource mr(a);
    {
        std::pmr::vector<int> v(&mr);
        for (int i = 0; i < 10000; i++) v.push_back(i);
        CHECK(v.size() == 10000 && v[9999] == 9999);
        v.shrink_to_fit();

        std::pmr::string s(&mr);
        for (int i = 0; i < 100; i++) s += "liballoc ";
        CHECK(s.size() == 900);

        std::pmr::map<int, std::pmr::string> m(&mr);
        for (int i = 0; i < 1000; i++) m.emplace(i, std::pmr::string("value that is not short", &mr));
        CHECK(m.size() == 1000 && m.at(500).size() == 23);
        m.erase(500);
        CHECK(m.count(500) == 0);

        std::pmr::vector<std::pmr::string> vs(&mr);
        vs.emplace_back("a long string that needs a heap block of its own");
        CHECK(vs[0].get_allocator().resource() == &mr);
    }
    /* Over-aligned objects through the resource. */
    void *p = mr.allocate(100, 256);
    CHECK(p != nullptr && (reinterpret_cast<std::uintptr_t>(p) & 255) == 0);
    mr.deallocate(p, 100, 256);
    /* Zero bytes are fine. */
    void *z = mr.allocate(0, 8);
    mr.deallocate(z, 0, 8);
    la::memory_resource same(a);
    CHECK(mr.is_equal(same));
    printf("%s: pmr containers ok\n", name);
}

/* Classic containers through la::stl_allocator. */
void stl_containers(const char *name, la_allocator a) {
    la::stl_allocator<int> al(a);
    std::vector<int, la::stl_allocator<int>> v(al);
    for (int i = 0; i < 5000; i++) v.push_back(i * 2);
    CHECK(v[4999] == 9998);
    std::list<double, la::stl_allocator<double>> l(al);
    for (int i = 0; i < 100; i++) l.push_back(i);
    CHECK(l.size() == 100);
    using pair_alloc = la::stl_allocator<std::pair<const int, int>>;
    std::map<int, int, std::less<int>, pair_alloc> m{pair_alloc(a)};
    for (int i = 0; i < 500; i++) m[i] = -i;
    CHECK(m[250] == -250);
    CHECK(v.get_allocator() == la::stl_allocator<double>(a));
    printf("%s: stl containers ok\n", name);
}

void both(const char *name, la_allocator a) {
    pmr_containers(name, a);
    stl_containers(name, a);
}

struct tracked {
    static int live;
    std::string text;
    explicit tracked(std::string t) : text(std::move(t)) { live++; }
    ~tracked() { live--; }
};
int tracked::live = 0;

void owners() {
    /* arena: containers, reset, capacity, move */
    {
        la::arena arena;
        both("arena", arena);
        CHECK(arena.capacity() > 0);
        CHECK(arena.reset(la::reset_mode::retain_capacity));
        la::arena moved(std::move(arena));
        CHECK(moved.native() != nullptr && arena.native() == nullptr);
        pmr_containers("arena (moved)", moved);
    }
    /* arena over the smp allocator */
    {
        la::arena arena(la_smp_allocator());
        both("arena/smp", arena);
    }
    /* fixed buffer and buffer-first */
    {
        std::vector<unsigned char> buf(1 << 20);
        la::fixed_buffer fb(buf.data(), buf.size());
        both("fixed buffer", fb);
        la::buffer_first bf(buf.data(), 4096, la_c_allocator());
        both("buffer-first", bf);
        la::stack_buffer_first<2048> sbf;
        la::memory_resource mr(sbf);
        std::pmr::vector<char> small(&mr);
        small.reserve(100);
        CHECK(sbf.owns(small.data()));
        std::pmr::vector<char> big(&mr);
        big.reserve(100000);
        CHECK(!sbf.owns(big.data()));
    }
    /* thread-safe over an arena, from several threads */
    {
        la::arena arena;
        la::thread_safe ts(arena);
        both("thread-safe/arena", ts);
        la::memory_resource mr(ts);
        std::vector<std::thread> threads;
        for (int t = 0; t < 3; t++)
            threads.emplace_back([&mr] {
                for (int r = 0; r < 50; r++) {
                    std::pmr::vector<long> v(&mr);
                    for (long i = 0; i < 500; i++) v.push_back(i);
                }
            });
        for (auto &t : threads) t.join();
    }
    /* logging to /dev/null */
    {
        int fd = open("/dev/null", O_WRONLY);
        CHECK(fd >= 0);
        la::logging lg(la_c_allocator(), fd);
        both("logging/c", lg);
        close(fd);
    }
    /* pool of non-trivial objects */
    {
        la::pool<tracked> pool;
        tracked *a = pool.create("first object, long enough to allocate");
        tracked *b = pool.create("second");
        CHECK(tracked::live == 2 && a->text.size() > 20);
        pool.destroy(a);
        CHECK(tracked::live == 1);
        tracked *c = pool.create("third");
        CHECK(c == a); /* the slot is reused */
        pool.destroy(b);
        pool.destroy(c);
        CHECK(tracked::live == 0);
        CHECK(pool.preheat(100) && pool.capacity() >= 100);
        CHECK(pool.reset(la::reset_mode::free_all) && pool.capacity() == 0);
    }
    /* out of memory is std::bad_alloc */
    {
        la::memory_resource mr(la_always_failing_allocator());
        bool threw = false;
        try {
            std::pmr::vector<int> v(&mr);
            v.push_back(1);
        } catch (const std::bad_alloc &) {
            threw = true;
        }
        CHECK(threw);
        la::failing f(la_c_allocator(), 2);
        la::stl_allocator<int> al(f);
        threw = false;
        try {
            std::vector<int, la::stl_allocator<int>> v(al);
            for (int i = 0; i < 1000; i++) v.push_back(i);
        } catch (const std::bad_alloc &) {
            threw = true;
        }
        CHECK(threw && f.stats().has_induced_failure);
        threw = false;
        try {
            la::thread_safe bad(la_allocator{nullptr, nullptr});
        } catch (const std::bad_alloc &) {
            threw = true;
        }
        CHECK(threw);
    }
    /* debug: clean use passes, a leak is reported */
    {
        la::debug dbg(la_c_allocator());
        both("debug/c", dbg);
        CHECK(!dbg.detect_leaks());
        CHECK(dbg.finish() == LA_CHECK_OK);

        int devnull = open("/dev/null", O_WRONLY);
        la_debug_config cfg;
        la_debug_config_init(&cfg);
        cfg.report_fd = devnull;
        la::debug leaky(la_c_allocator(), &cfg);
        la::allocator_ref(leaky).make<std::uint64_t>(42); /* never disposed */
        CHECK(leaky.finish() == LA_CHECK_LEAK);
        close(devnull);
    }
    /* allocator_ref make/dispose */
    {
        la::allocator_ref r = la::smp_allocator();
        auto *t = r.make<tracked>("made through allocator_ref");
        CHECK(tracked::live == 1);
        r.dispose(t);
        CHECK(tracked::live == 0);
    }
}

}  // namespace

int main() {
    both("page", la_page_allocator());
    both("c", la_c_allocator());
    both("smp", la_smp_allocator());
    owners();
    return check_summary("cpp_family");
}
