//! zig_example.zig: liballoc from Zig (build and run: `make examples-check`,
//! or `zig build example` in bindings/zig).
//!
//! Both directions of the binding: liballoc allocators used as
//! `std.mem.Allocator` by Zig code, and a Zig allocator handed to code that
//! takes an `la_allocator`.

const std = @import("std");
const la = @import("liballoc");

pub fn main() !void {
    // 1. liballoc's general-purpose allocator behind std containers.
    const gpa = la.smpAllocator();
    var list: std.ArrayList(u32) = .empty;
    defer list.deinit(gpa);
    for (0..1000) |i| try list.append(gpa, @intCast(i * i));
    std.debug.print("ArrayList on la_smp_allocator: {d} items, last {d}\n", .{ list.items.len, list.items[999] });

    // 2. A liballoc arena: everything is freed at deinit.
    var arena = try la.Arena.init(la.page());
    defer arena.deinit();
    const a = arena.allocator();
    const msg = try std.fmt.allocPrint(a, "{s} block number {d}", .{ "arena", 1 });
    std.debug.print("arena: {s}\n", .{msg});

    // 3. Any la_allocator, e.g. a thread-safe wrapper over the arena.
    const ts = la.c.la_thread_safe_create(arena.la()) orelse return error.OutOfMemory;
    defer la.c.la_thread_safe_destroy(ts);
    var adapter: la.Adapter = .init(la.c.la_thread_safe_allocator(ts));
    var map = std.AutoHashMap(u32, u32).init(adapter.allocator());
    defer map.deinit();
    try map.put(1, 2);
    std.debug.print("hash map through thread-safe(arena): 1 -> {d}\n", .{map.get(1).?});

    // 4. The reverse: a Zig allocator as an la_allocator, used through the
    //    C API (as C code would).
    var zig_arena = std.heap.ArenaAllocator.init(std.heap.page_allocator);
    defer zig_arena.deinit();
    const zig_allocator = zig_arena.allocator();
    const for_c = la.fromZig(&zig_allocator);
    const p = la.c.la_raw_alloc(for_c, 64, 4, 0) orelse return error.OutOfMemory;
    std.debug.print("C-side block from a Zig arena at {*} (16-byte aligned: {})\n", .{ p, @intFromPtr(p) % 16 == 0 });
    la.c.la_raw_free(for_c, p, 64, 4, 0);
}
