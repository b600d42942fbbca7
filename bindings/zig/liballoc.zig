//! liballoc for Zig: the library's `la_allocator`s as `std.mem.Allocator`s,
//! and any `std.mem.Allocator` as an `la_allocator` for C code.
//!
//! The two interfaces have the same four entry points with the same
//! contract (liballoc reproduces Zig's), so each direction is a thin
//! adapter: a Zig vtable whose functions call the C vtable, or a C vtable
//! (C calling convention) whose functions call the Zig one.
//!
//!     var arena = try liballoc.Arena.init(liballoc.page());
//!     defer arena.deinit();
//!     const gpa = liballoc.smpAllocator();          // std.mem.Allocator
//!     var ad: liballoc.Adapter = .init(arena.la()); // any la_allocator
//!     const a = ad.allocator();
//!     const la = liballoc.fromZig(&zig_allocator);  // for C code
//!
//! The C declarations are written here by hand (`c`), matching
//! `include/liballoc.h`; they link against `liballoc.so` (`-lalloc`).

const std = @import("std");
const Alignment = std.mem.Alignment;
const ZigAllocator = std.mem.Allocator;

/// The C ABI of liballoc, as declared in include/liballoc.h.
pub const c = struct {
    pub const VTable = extern struct {
        alloc: ?*const fn (ctx: ?*anyopaque, len: usize, alignment: u8, ret_addr: usize) callconv(.c) ?*anyopaque,
        resize: ?*const fn (ctx: ?*anyopaque, memory: ?*anyopaque, len: usize, alignment: u8, new_len: usize, ret_addr: usize) callconv(.c) bool,
        remap: ?*const fn (ctx: ?*anyopaque, memory: ?*anyopaque, len: usize, alignment: u8, new_len: usize, ret_addr: usize) callconv(.c) ?*anyopaque,
        free: ?*const fn (ctx: ?*anyopaque, memory: ?*anyopaque, len: usize, alignment: u8, ret_addr: usize) callconv(.c) void,
    };

    /// `la_allocator`: a state pointer and the vtable that interprets it.
    pub const Allocator = extern struct {
        ptr: ?*anyopaque,
        vtable: ?*const VTable,
    };

    pub const ResetMode = enum(c_uint) { free_all = 0, retain_capacity = 1, retain_with_limit = 2 };

    /// `la_fixed_buffer` (caller storage; layout as in the header).
    pub const FixedBuffer = extern struct { buffer: ?[*]u8, len: usize, end_index: usize };
    /// `la_buffer_first` (caller storage; layout as in the header).
    pub const BufferFirst = extern struct { buffer: ?[*]u8, len: usize, end_index: usize, fallback: Allocator };

    pub const la_arena = opaque {};
    pub const la_failing = opaque {};
    pub const la_pool = opaque {};
    pub const la_thread_safe = opaque {};
    pub const la_logging = opaque {};
    pub const la_debug = opaque {};

    pub extern fn la_version() [*:0]const u8;
    pub extern fn la_raw_alloc(a: Allocator, len: usize, alignment: u8, ret_addr: usize) ?*anyopaque;
    pub extern fn la_raw_resize(a: Allocator, memory: ?*anyopaque, len: usize, alignment: u8, new_len: usize, ret_addr: usize) bool;
    pub extern fn la_raw_remap(a: Allocator, memory: ?*anyopaque, len: usize, alignment: u8, new_len: usize, ret_addr: usize) ?*anyopaque;
    pub extern fn la_raw_free(a: Allocator, memory: ?*anyopaque, len: usize, alignment: u8, ret_addr: usize) void;

    pub extern fn la_page_allocator() Allocator;
    pub extern fn la_c_allocator() Allocator;
    pub extern fn la_smp_allocator() Allocator;
    pub extern fn la_always_failing_allocator() Allocator;

    pub extern fn la_fixed_buffer_init(fb: *FixedBuffer, buf: ?*anyopaque, len: usize) void;
    pub extern fn la_fixed_buffer_allocator(fb: *FixedBuffer) Allocator;
    pub extern fn la_fixed_buffer_thread_safe_allocator(fb: *FixedBuffer) Allocator;
    pub extern fn la_fixed_buffer_reset(fb: *FixedBuffer) void;

    pub extern fn la_arena_create(child: Allocator) ?*la_arena;
    pub extern fn la_arena_allocator(arena: *la_arena) Allocator;
    pub extern fn la_arena_reset(arena: *la_arena, mode: ResetMode, limit: usize) bool;
    pub extern fn la_arena_query_capacity(arena: *const la_arena) usize;
    pub extern fn la_arena_destroy(arena: *la_arena) void;

    pub extern fn la_failing_create(child: Allocator, fail_index: usize, resize_fail_index: usize) ?*la_failing;
    pub extern fn la_failing_allocator(f: *la_failing) Allocator;
    pub extern fn la_failing_destroy(f: *la_failing) void;

    pub extern fn la_buffer_first_init(bf: *BufferFirst, buf: ?*anyopaque, len: usize, fallback: Allocator) void;
    pub extern fn la_buffer_first_allocator(bf: *BufferFirst) Allocator;
    pub extern fn la_buffer_first_owns(bf: *const BufferFirst, ptr: ?*const anyopaque) bool;

    pub extern fn la_pool_create(child: Allocator, item_size: usize, item_align: usize) ?*la_pool;
    pub extern fn la_pool_create_item(pool: *la_pool) ?*anyopaque;
    pub extern fn la_pool_destroy_item(pool: *la_pool, item: ?*anyopaque) void;
    pub extern fn la_pool_preheat(pool: *la_pool, n: usize) bool;
    pub extern fn la_pool_reset(pool: *la_pool, mode: ResetMode, limit: usize) bool;
    pub extern fn la_pool_query_capacity(pool: *const la_pool) usize;
    pub extern fn la_pool_destroy(pool: *la_pool) void;

    pub extern fn la_thread_safe_create(child: Allocator) ?*la_thread_safe;
    pub extern fn la_thread_safe_allocator(ts: *la_thread_safe) Allocator;
    pub extern fn la_thread_safe_destroy(ts: *la_thread_safe) void;

    pub extern fn la_logging_create(child: Allocator, fd: c_int, min_len: usize) ?*la_logging;
    pub extern fn la_logging_allocator(lg: *la_logging) Allocator;
    pub extern fn la_logging_destroy(lg: *la_logging) void;

    /// `cfg` is a `la_debug_config *` (NULL: defaults); see the header.
    pub extern fn la_debug_create(backing: Allocator, cfg: ?*const anyopaque) ?*la_debug;
    pub extern fn la_debug_allocator(d: *la_debug) Allocator;
    pub extern fn la_debug_detect_leaks(d: *la_debug) bool;
    /// Returns LA_CHECK_OK (0) or LA_CHECK_LEAK (1).
    pub extern fn la_debug_destroy(d: *la_debug) c_int;
};

inline fn log2(a: Alignment) u8 {
    return @intCast(@backingInt(a));
}

// ---- la_allocator -> std.mem.Allocator ----

/// Adapter state for turning an `la_allocator` into a `std.mem.Allocator`.
/// Keep it alive (and in place) while the Zig allocator is in use.
///
/// Calls go straight to the `la_allocator`'s C vtable (one indirect call),
/// not through `la_raw_*`: Zig's Allocator contract already guarantees what
/// those check (len and new_len > 0, a real block, alignment < 64). What
/// Zig cannot guarantee is the C value itself, so a NULL vtable or entry
/// behaves like `la_raw_*`: allocations fail, frees do nothing.
pub const Adapter = struct {
    la: c.Allocator,

    pub fn init(la: c.Allocator) Adapter {
        return .{ .la = la };
    }

    pub fn allocator(self: *Adapter) ZigAllocator {
        return .{ .ptr = self, .vtable = &vtable };
    }

    const vtable: ZigAllocator.VTable = .{ .alloc = alloc, .resize = resize, .remap = remap, .free = free };

    inline fn get(ctx: *anyopaque) *const c.Allocator {
        const self: *Adapter = @ptrCast(@alignCast(ctx));
        return &self.la;
    }
    fn alloc(ctx: *anyopaque, len: usize, alignment: Alignment, ra: usize) ?[*]u8 {
        const a = get(ctx);
        const f = (a.vtable orelse return null).alloc orelse return null;
        return @ptrCast(f(a.ptr, len, log2(alignment), ra));
    }
    fn resize(ctx: *anyopaque, memory: []u8, alignment: Alignment, new_len: usize, ra: usize) bool {
        const a = get(ctx);
        const f = (a.vtable orelse return false).resize orelse return false;
        return f(a.ptr, memory.ptr, memory.len, log2(alignment), new_len, ra);
    }
    fn remap(ctx: *anyopaque, memory: []u8, alignment: Alignment, new_len: usize, ra: usize) ?[*]u8 {
        const a = get(ctx);
        const f = (a.vtable orelse return null).remap orelse return null;
        return @ptrCast(f(a.ptr, memory.ptr, memory.len, log2(alignment), new_len, ra));
    }
    fn free(ctx: *anyopaque, memory: []u8, alignment: Alignment, ra: usize) void {
        const a = get(ctx);
        const f = (a.vtable orelse return).free orelse return;
        f(a.ptr, memory.ptr, memory.len, log2(alignment), ra);
    }
};

/// A `std.mem.Allocator` over one of liballoc's process-wide allocators
/// (`get` returns it). The `la_allocator` is read once into static storage
/// that the Zig allocator points to, and calls go straight to the C vtable
/// (the two contracts are the same, and these allocators are never NULL),
/// so the binding costs one load and one indirect call per operation.
fn Static(comptime get: fn () callconv(.c) c.Allocator) type {
    return struct {
        var cached: c.Allocator = .{ .ptr = null, .vtable = null };
        const vtable: ZigAllocator.VTable = .{ .alloc = alloc, .resize = resize, .remap = remap, .free = free };
        inline fn la(ctx: *anyopaque) *const c.Allocator {
            return @ptrCast(@alignCast(ctx));
        }
        fn alloc(ctx: *anyopaque, len: usize, alignment: Alignment, ra: usize) ?[*]u8 {
            const a = la(ctx);
            return @ptrCast(a.vtable.?.alloc.?(a.ptr, len, log2(alignment), ra));
        }
        fn resize(ctx: *anyopaque, memory: []u8, alignment: Alignment, new_len: usize, ra: usize) bool {
            const a = la(ctx);
            return a.vtable.?.resize.?(a.ptr, memory.ptr, memory.len, log2(alignment), new_len, ra);
        }
        fn remap(ctx: *anyopaque, memory: []u8, alignment: Alignment, new_len: usize, ra: usize) ?[*]u8 {
            const a = la(ctx);
            return @ptrCast(a.vtable.?.remap.?(a.ptr, memory.ptr, memory.len, log2(alignment), new_len, ra));
        }
        fn free(ctx: *anyopaque, memory: []u8, alignment: Alignment, ra: usize) void {
            const a = la(ctx);
            a.vtable.?.free.?(a.ptr, memory.ptr, memory.len, log2(alignment), ra);
        }
        fn allocator() ZigAllocator {
            // Every caller stores the same value, so racing callers agree.
            cached = get();
            return .{ .ptr = &cached, .vtable = &vtable };
        }
    };
}

/// liballoc's page allocator as a `std.mem.Allocator`.
pub fn pageAllocator() ZigAllocator {
    return Static(c.la_page_allocator).allocator();
}
/// liballoc's C allocator as a `std.mem.Allocator`.
pub fn cAllocator() ZigAllocator {
    return Static(c.la_c_allocator).allocator();
}
/// liballoc's general-purpose, thread-caching allocator as a `std.mem.Allocator`.
pub fn smpAllocator() ZigAllocator {
    return Static(c.la_smp_allocator).allocator();
}

/// liballoc's page allocator (for wrappers that take an `la_allocator`).
pub fn page() c.Allocator {
    return c.la_page_allocator();
}

// ---- std.mem.Allocator -> la_allocator ----

/// The C vtable that serves calls from C with a Zig allocator; the context
/// pointer is a `*const std.mem.Allocator`.
const from_zig_vtable: c.VTable = .{
    .alloc = fzAlloc,
    .resize = fzResize,
    .remap = fzRemap,
    .free = fzFree,
};

fn zigOf(ctx: ?*anyopaque) ?*const ZigAllocator {
    return @ptrCast(@alignCast(ctx));
}
// The C side is defensive (zero lengths, NULL blocks, alignments of 64 or
// more are refused); the Zig side is not, so the checks are made here.
fn fzAlloc(ctx: ?*anyopaque, len: usize, alignment: u8, ra: usize) callconv(.c) ?*anyopaque {
    const z = zigOf(ctx) orelse return null;
    if (len == 0 or alignment >= @bitSizeOf(usize)) return null;
    return z.rawAlloc(len, @fromBackingInt(@intCast(alignment)), ra);
}
fn fzResize(ctx: ?*anyopaque, memory: ?*anyopaque, len: usize, alignment: u8, new_len: usize, ra: usize) callconv(.c) bool {
    const z = zigOf(ctx) orelse return false;
    const m: [*]u8 = @ptrCast(memory orelse return false);
    if (len == 0 or new_len == 0 or alignment >= @bitSizeOf(usize)) return false;
    return z.rawResize(m[0..len], @fromBackingInt(@intCast(alignment)), new_len, ra);
}
fn fzRemap(ctx: ?*anyopaque, memory: ?*anyopaque, len: usize, alignment: u8, new_len: usize, ra: usize) callconv(.c) ?*anyopaque {
    const z = zigOf(ctx) orelse return null;
    const m: [*]u8 = @ptrCast(memory orelse return null);
    if (len == 0 or new_len == 0 or alignment >= @bitSizeOf(usize)) return null;
    return z.rawRemap(m[0..len], @fromBackingInt(@intCast(alignment)), new_len, ra);
}
fn fzFree(ctx: ?*anyopaque, memory: ?*anyopaque, len: usize, alignment: u8, ra: usize) callconv(.c) void {
    const z = zigOf(ctx) orelse return;
    const m: [*]u8 = @ptrCast(memory orelse return);
    if (len == 0 or alignment >= @bitSizeOf(usize)) return;
    z.rawFree(m[0..len], @fromBackingInt(@intCast(alignment)), ra);
}

/// An `la_allocator` that serves C code with the Zig allocator `*zig`.
/// `zig` must stay alive and in place while the result is used.
pub fn fromZig(zig: *const ZigAllocator) c.Allocator {
    return .{ .ptr = @constCast(zig), .vtable = &from_zig_vtable };
}

// ---- owning wrappers for the stateful allocators ----

/// An arena (`la_arena`): frees everything at `deinit`.
pub const Arena = struct {
    handle: *c.la_arena,
    adapter: Adapter,

    pub fn init(child: c.Allocator) error{OutOfMemory}!Arena {
        const h = c.la_arena_create(child) orelse return error.OutOfMemory;
        return .{ .handle = h, .adapter = .init(c.la_arena_allocator(h)) };
    }
    pub fn deinit(self: *Arena) void {
        c.la_arena_destroy(self.handle);
    }
    /// The arena as a `std.mem.Allocator` (`self` must not move).
    pub fn allocator(self: *Arena) ZigAllocator {
        return self.adapter.allocator();
    }
    pub fn la(self: *Arena) c.Allocator {
        return self.adapter.la;
    }
    pub fn reset(self: *Arena, mode: c.ResetMode, limit: usize) bool {
        return c.la_arena_reset(self.handle, mode, limit);
    }
};

/// A memory pool of `T` (`la_pool`).
pub fn Pool(comptime T: type) type {
    return struct {
        const Self = @This();
        handle: *c.la_pool,

        pub fn init(child: c.Allocator) error{OutOfMemory}!Self {
            const h = c.la_pool_create(child, @sizeOf(T), @alignOf(T)) orelse return error.OutOfMemory;
            return .{ .handle = h };
        }
        pub fn deinit(self: *Self) void {
            c.la_pool_destroy(self.handle);
        }
        pub fn create(self: *Self) error{OutOfMemory}!*T {
            return @ptrCast(@alignCast(c.la_pool_create_item(self.handle) orelse return error.OutOfMemory));
        }
        pub fn destroy(self: *Self, item: *T) void {
            c.la_pool_destroy_item(self.handle, item);
        }
        pub fn reset(self: *Self, mode: c.ResetMode, limit: usize) bool {
            return c.la_pool_reset(self.handle, mode, limit);
        }
    };
}
