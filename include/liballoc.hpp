/*
 * liballoc.hpp: header-only C++17 face of liballoc.
 *
 * - la::allocator_ref: a non-owning la_allocator with typed helpers.
 * - RAII owners for the stateful allocators: la::arena, la::fixed_buffer,
 *   la::buffer_first (and la::stack_buffer_first<N> with its own storage),
 *   la::pool<T>, la::thread_safe, la::logging, la::failing, la::debug. Each converts to
 *   la_allocator, is non-copyable, and frees its state in its destructor;
 *   handles are movable, caller-storage ones (fixed_buffer, buffer_first)
 *   are not (the allocator points into them).
 * - la::memory_resource: a std::pmr::memory_resource over any la_allocator,
 *   so std::pmr::vector / string / map run on an arena or the smp allocator.
 * - la::stl_allocator<T>: a classic allocator template over any
 *   la_allocator (for std::vector<T, la::stl_allocator<T>> and friends).
 *
 * Out of memory throws std::bad_alloc, as C++ containers expect; the C
 * functions underneath never throw. Thread safety: that of the allocator
 * wrapped (see include/liballoc.h and docs/allocators.md).
 */
#ifndef LIBALLOC_HPP
#define LIBALLOC_HPP

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>
#include <type_traits>
#include <utility>

#include "liballoc.h"

namespace la {

/* log2 of a power-of-two byte alignment (for the raw vtable calls). */
inline la_alignment log2_align(std::size_t align) noexcept {
    la_alignment l = 0;
    while ((std::size_t{1} << l) < align) ++l;
    return l;
}

/* A non-owning la_allocator with typed helpers. */
class allocator_ref {
public:
    allocator_ref(la_allocator a) noexcept : a_(a) {}  // NOLINT: implicit on purpose
    operator la_allocator() const noexcept { return a_; }
    la_allocator get() const noexcept { return a_; }

    /* Raw bytes; nullptr when out of memory. */
    void *alloc_bytes(std::size_t len, std::size_t align) const noexcept {
        return la_create(a_, len, align);
    }
    void free_bytes(void *p, std::size_t len, std::size_t align) const noexcept {
        la_destroy(a_, p, len, align);
    }

    /* Constructs a T; throws std::bad_alloc when out of memory. */
    template <class T, class... Args>
    T *make(Args &&...args) const {
        void *p = la_create(a_, sizeof(T), alignof(T));
        if (p == nullptr) throw std::bad_alloc();
        try {
            return ::new (p) T(std::forward<Args>(args)...);
        } catch (...) {
            la_destroy(a_, p, sizeof(T), alignof(T));
            throw;
        }
    }
    /* Destroys a T made by make(). nullptr does nothing. */
    template <class T>
    void dispose(T *p) const noexcept {
        if (p == nullptr) return;
        p->~T();
        la_destroy(a_, p, sizeof(T), alignof(T));
    }

private:
    la_allocator a_;
};

inline allocator_ref page_allocator() noexcept { return la_page_allocator(); }
inline allocator_ref c_allocator() noexcept { return la_c_allocator(); }
inline allocator_ref smp_allocator() noexcept { return la_smp_allocator(); }
inline allocator_ref always_failing_allocator() noexcept { return la_always_failing_allocator(); }

/* Owns a handle and destroys it with Destroy; movable, not copyable. */
template <class H, void (*Destroy)(H *)>
class handle {
public:
    explicit handle(H *h) : h_(h) {
        if (h_ == nullptr) throw std::bad_alloc();
    }
    handle(const handle &) = delete;
    handle &operator=(const handle &) = delete;
    handle(handle &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    handle &operator=(handle &&o) noexcept {
        if (this != &o) {
            if (h_ != nullptr) Destroy(h_);
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    ~handle() {
        if (h_ != nullptr) Destroy(h_);
    }
    H *native() const noexcept { return h_; }
    /* Gives up ownership: the caller destroys the handle. */
    H *release() noexcept { return std::exchange(h_, nullptr); }

private:
    H *h_;
};

enum class reset_mode : int {
    free_all = LA_ARENA_FREE_ALL,
    retain_capacity = LA_ARENA_RETAIN_CAPACITY,
    retain_with_limit = LA_ARENA_RETAIN_WITH_LIMIT,
};

/* An arena: allocations are freed all at once, by reset() or destruction. */
class arena : public handle<la_arena, la_arena_destroy> {
public:
    explicit arena(la_allocator child = la_page_allocator())
        : handle(la_arena_create(child)) {}
    la_allocator get() const noexcept { return la_arena_allocator(native()); }
    operator la_allocator() const noexcept { return get(); }
    bool reset(reset_mode mode = reset_mode::retain_capacity, std::size_t limit = 0) noexcept {
        return la_arena_reset(native(), static_cast<la_arena_reset_mode>(static_cast<int>(mode)), limit);
    }
    std::size_t capacity() const noexcept { return la_arena_query_capacity(native()); }
};

/* A fixed-buffer allocator over caller memory (not movable). */
class fixed_buffer {
public:
    fixed_buffer(void *buf, std::size_t len) noexcept { la_fixed_buffer_init(&fb_, buf, len); }
    fixed_buffer(const fixed_buffer &) = delete;
    fixed_buffer &operator=(const fixed_buffer &) = delete;
    la_allocator get() noexcept { return la_fixed_buffer_allocator(&fb_); }
    la_allocator thread_safe() noexcept { return la_fixed_buffer_thread_safe_allocator(&fb_); }
    operator la_allocator() noexcept { return get(); }
    void reset() noexcept { la_fixed_buffer_reset(&fb_); }
    bool owns(const void *p, std::size_t len) const noexcept { return la_fixed_buffer_owns(&fb_, p, len); }

private:
    la_fixed_buffer fb_;
};

/* A buffer-first allocator: caller memory first, then a fallback. */
class buffer_first {
public:
    buffer_first(void *buf, std::size_t len, la_allocator fallback = la_smp_allocator()) noexcept {
        la_buffer_first_init(&bf_, buf, len, fallback);
    }
    buffer_first(const buffer_first &) = delete;
    buffer_first &operator=(const buffer_first &) = delete;
    la_allocator get() noexcept { return la_buffer_first_allocator(&bf_); }
    operator la_allocator() noexcept { return get(); }
    bool owns(const void *p) const noexcept { return la_buffer_first_owns(&bf_, p); }
    std::size_t used() const noexcept { return la_buffer_first_used(&bf_); }

private:
    la_buffer_first bf_;
};

/* A buffer-first allocator with N bytes of its own storage (Zig's
 * stackFallback): put it on the stack for short-lived work. */
template <std::size_t N>
class stack_buffer_first {
public:
    explicit stack_buffer_first(la_allocator fallback = la_smp_allocator()) noexcept
        : bf_(buf_, N, fallback) {}
    la_allocator get() noexcept { return bf_.get(); }
    operator la_allocator() noexcept { return get(); }
    bool owns(const void *p) const noexcept { return bf_.owns(p); }

private:
    alignas(std::max_align_t) unsigned char buf_[N];
    buffer_first bf_;
};

/* A memory pool of T: create() constructs, destroy() destructs and recycles. */
template <class T>
class pool : public handle<la_pool, la_pool_destroy> {
public:
    explicit pool(la_allocator child = la_smp_allocator())
        : handle(la_pool_create(child, sizeof(T), alignof(T))) {}
    template <class... Args>
    T *create(Args &&...args) {
        void *p = la_pool_create_item(native());
        if (p == nullptr) throw std::bad_alloc();
        try {
            return ::new (p) T(std::forward<Args>(args)...);
        } catch (...) {
            la_pool_destroy_item(native(), p);
            throw;
        }
    }
    void destroy(T *p) noexcept {
        if (p == nullptr) return;
        p->~T();
        la_pool_destroy_item(native(), p);
    }
    bool preheat(std::size_t n) noexcept { return la_pool_preheat(native(), n); }
    /* Drops every item without running destructors (for trivially
     * destructible T, or after destroying them yourself). */
    bool reset(reset_mode mode = reset_mode::retain_capacity, std::size_t limit = 0) noexcept {
        return la_pool_reset(native(), static_cast<la_arena_reset_mode>(static_cast<int>(mode)), limit);
    }
    std::size_t capacity() const noexcept { return la_pool_query_capacity(native()); }
};

/* Any allocator behind a fork-safe lock. */
class thread_safe : public handle<la_thread_safe, la_thread_safe_destroy> {
public:
    explicit thread_safe(la_allocator child) : handle(la_thread_safe_create(child)) {}
    la_allocator get() const noexcept { return la_thread_safe_allocator(native()); }
    operator la_allocator() const noexcept { return get(); }
};

/* Any allocator with every call written to a file descriptor. */
class logging : public handle<la_logging, la_logging_destroy> {
public:
    logging(la_allocator child, int fd, std::size_t min_len = 0)
        : handle(la_logging_create(child, fd, min_len)) {}
    la_allocator get() const noexcept { return la_logging_allocator(native()); }
    operator la_allocator() const noexcept { return get(); }
};

/* Fails on purpose after `fail_index` allocations (for out-of-memory tests). */
class failing : public handle<la_failing, la_failing_destroy> {
public:
    failing(la_allocator child, std::size_t fail_index, std::size_t resize_fail_index = SIZE_MAX)
        : handle(la_failing_create(child, fail_index, resize_fail_index)) {}
    la_allocator get() const noexcept { return la_failing_allocator(native()); }
    operator la_allocator() const noexcept { return get(); }
    la_failing_stats stats() const noexcept {
        la_failing_stats s{};
        la_failing_get_stats(native(), &s);
        return s;
    }
};

namespace detail {
inline void debug_destroy(la_debug *d) noexcept { (void)la_debug_destroy(d); }
}  // namespace detail

/* A debug allocator: traces, leak reports, double-free and overflow checks.
 * Call finish() to learn whether blocks leaked (the destructor only reports
 * them); default configuration unless `cfg` is given. */
class debug : public handle<la_debug, detail::debug_destroy> {
public:
    explicit debug(la_allocator backing = la_page_allocator(), const la_debug_config *cfg = nullptr)
        : handle(la_debug_create(backing, cfg)) {}
    la_allocator get() const noexcept { return la_debug_allocator(native()); }
    operator la_allocator() const noexcept { return get(); }
    /* Prints a leak report; true when blocks are still live. */
    bool detect_leaks() const noexcept { return la_debug_detect_leaks(native()); }
    la_debug_stats stats() const noexcept {
        la_debug_stats s{};
        la_debug_get_stats(native(), &s);
        return s;
    }
    /* Destroys the allocator now: LA_CHECK_OK or LA_CHECK_LEAK. */
    la_check finish() noexcept {
        return la_debug_destroy(release());
    }
};

/* std::pmr::memory_resource over any la_allocator. */
class memory_resource : public std::pmr::memory_resource {
public:
    explicit memory_resource(la_allocator a) noexcept : a_(a) {}
    la_allocator get() const noexcept { return a_; }

private:
    void *do_allocate(std::size_t bytes, std::size_t align) override {
        void *p = la_create(a_, bytes, align);
        if (p == nullptr) throw std::bad_alloc();
        return p;
    }
    void do_deallocate(void *p, std::size_t bytes, std::size_t align) override {
        la_destroy(a_, p, bytes, align);
    }
    bool do_is_equal(const std::pmr::memory_resource &other) const noexcept override {
        auto *o = dynamic_cast<const memory_resource *>(&other);
        return o != nullptr && o->a_.ptr == a_.ptr && o->a_.vtable == a_.vtable;
    }

    la_allocator a_;
};

/* A classic STL allocator over any la_allocator. Equal when they use the
 * same allocator. */
template <class T>
class stl_allocator {
public:
    using value_type = T;
    using propagate_on_container_copy_assignment = std::true_type;
    using propagate_on_container_move_assignment = std::true_type;
    using propagate_on_container_swap = std::true_type;

    stl_allocator(la_allocator a) noexcept : a_(a) {}  // NOLINT: implicit on purpose
    template <class U>
    stl_allocator(const stl_allocator<U> &o) noexcept : a_(o.get()) {}  // NOLINT

    T *allocate(std::size_t n) {
        void *p = la_alloc(a_, sizeof(T), n, alignof(T));
        if (p == nullptr) throw std::bad_alloc();
        return static_cast<T *>(p);
    }
    void deallocate(T *p, std::size_t n) noexcept { la_free(a_, p, sizeof(T), n, alignof(T)); }
    la_allocator get() const noexcept { return a_; }

    template <class U>
    bool operator==(const stl_allocator<U> &o) const noexcept {
        return a_.ptr == o.get().ptr && a_.vtable == o.get().vtable;
    }
    template <class U>
    bool operator!=(const stl_allocator<U> &o) const noexcept {
        return !(*this == o);
    }

private:
    la_allocator a_;
};

}  // namespace la

#endif /* LIBALLOC_HPP */
