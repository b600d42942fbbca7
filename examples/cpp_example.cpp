/*
 * cpp_example.cpp: liballoc from C++17 (include/liballoc.hpp).
 *
 * std::pmr containers on an arena, a classic container on the smp
 * allocator, and a typed memory pool.
 */
#include <cstdio>
#include <map>
#include <memory_resource>
#include <string>
#include <vector>

#include "liballoc.hpp"

struct point {
    double x, y;
    point(double x_, double y_) : x(x_), y(y_) {}
};

int main() {
    /* 1. pmr containers on an arena: one free at the end of the scope. */
    {
        la::arena arena(la_smp_allocator());
        la::memory_resource mr(arena);
        std::pmr::vector<std::pmr::string> names(&mr);
        for (int i = 0; i < 5; i++) names.emplace_back("name number " + std::to_string(i));
        std::pmr::map<int, double> squares(&mr);
        for (int i = 0; i < 100; i++) squares[i] = i * 1.5;
        std::printf("arena: %zu names, %zu squares, %zu bytes reserved\n", names.size(),
                    squares.size(), arena.capacity());
    }

    /* 2. A classic allocator over the smp allocator. */
    std::vector<int, la::stl_allocator<int>> v{la::stl_allocator<int>(la_smp_allocator())};
    for (int i = 0; i < 1000; i++) v.push_back(i);
    std::printf("vector on la_smp_allocator: %zu items\n", v.size());

    /* 3. A pool of points: create constructs, destroy destructs. */
    la::pool<point> pool;
    point *p = pool.create(1.0, 2.0);
    std::printf("pool point: (%.1f, %.1f)\n", p->x, p->y);
    pool.destroy(p);

    /* 4. Out of memory is std::bad_alloc. */
    try {
        la::memory_resource none(la_always_failing_allocator());
        std::pmr::vector<int> w(&none);
        w.push_back(1);
    } catch (const std::bad_alloc &) {
        std::printf("always-failing allocator: std::bad_alloc, as expected\n");
    }
    return 0;
}
