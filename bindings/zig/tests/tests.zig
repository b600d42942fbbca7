//! Tests of the Zig binding: Zig's own allocator test suite
//! (std.heap.testAllocator*) and std containers through `std.mem.Allocator`
//! on every allocator of the C suites' registry (c_tests/registry.h, read
//! through c_tests/registry_export.c, so an allocator added there is tested
//! here too) and on the binding's ready-made allocators; what is particular
//! to one allocator (arena reset, buffer-first routing, failures, pools,
//! debug checks from threads); and the reverse direction: C code (drive.c)
//! allocating through a Zig allocator handed over as an `la_allocator`.

const std = @import("std");
const la = @import("liballoc");
const c = la.c;
const testing = std.testing;

extern fn drive_allocator(a: c.Allocator) c_int;

/// Zig's four allocator tests.
fn zigSuite(a: std.mem.Allocator) !void {
    try std.heap.testAllocator(a);
    try std.heap.testAllocatorAligned(a);
    try std.heap.testAllocatorLargeAlignment(a);
    try std.heap.testAllocatorAlignedShrink(a);
}

/// std containers: ArrayList, AutoHashMap, allocPrint.
fn containers(a: std.mem.Allocator) !void {
    var list: std.ArrayList(u64) = .empty;
    defer list.deinit(a);
    for (0..10_000) |i| try list.append(a, i * 3);
    try testing.expectEqual(@as(u64, 29_997), list.items[9_999]);
    list.shrinkAndFree(a, 10);
    try testing.expectEqual(@as(usize, 10), list.items.len);

    var map = std.AutoHashMap(u32, u32).init(a);
    defer map.deinit();
    for (0..5_000) |i| try map.put(@intCast(i), @intCast(i * 2));
    try testing.expectEqual(@as(?u32, 8_000), map.get(4_000));
    try testing.expect(map.remove(17));
    try testing.expectEqual(@as(?u32, null), map.get(17));

    const s = try std.fmt.allocPrint(a, "{s}-{d}-{x}", .{ "liballoc", 42, 255 });
    defer a.free(s);
    try testing.expectEqualStrings("liballoc-42-ff", s);
}

fn both(a: std.mem.Allocator) !void {
    try zigSuite(a);
    try containers(a);
}

/// The allocators under test, from c_tests/registry.h (one X line each),
/// made and unmade by the registry's own pairs in c_tests/registry_export.c.
const registry = struct {
    const Entry = opaque {};
    extern fn registry_count() usize;
    extern fn registry_name(index: usize) ?[*:0]const u8;
    extern fn registry_make(index: usize, out_allocator: *c.Allocator) ?*Entry;
    /// 0 when a check of the unmake failed (printed on stderr).
    extern fn registry_unmake(entry: ?*Entry) c_int;
};

test "every allocator of c_tests/registry.h passes Zig's suite and std containers" {
    const n = registry.registry_count();
    try testing.expect(n > 0);
    var failed: usize = 0;
    for (0..n) |i| {
        const name = registry.registry_name(i) orelse "?";
        var made: c.Allocator = undefined;
        const entry = registry.registry_make(i, &made) orelse {
            std.debug.print("registry allocator {s}: could not be made\n", .{name});
            failed += 1;
            continue;
        };
        var ad: la.Adapter = .init(made);
        both(ad.allocator()) catch |err| {
            std.debug.print("registry allocator {s}: {s}\n", .{ name, @errorName(err) });
            failed += 1;
        };
        if (registry.registry_unmake(entry) == 0) {
            std.debug.print("registry allocator {s}: its unmake checks failed\n", .{name});
            failed += 1;
        }
    }
    try testing.expectEqual(@as(usize, 0), failed);
}

// The binding's ready-made allocators call the C vtable without an Adapter.
test "pageAllocator()" {
    try both(la.pageAllocator());
}

test "cAllocator()" {
    try both(la.cAllocator());
}

test "smpAllocator()" {
    try both(la.smpAllocator());
}

test "adapter over a NULL vtable or NULL entries: allocations fail, nothing crashes" {
    var none: la.Adapter = .init(.{ .ptr = null, .vtable = null });
    try testing.expectError(error.OutOfMemory, none.allocator().alloc(u8, 16));
    const empty: c.VTable = .{ .alloc = null, .resize = null, .remap = null, .free = null };
    var holes: la.Adapter = .init(.{ .ptr = null, .vtable = &empty });
    const a = holes.allocator();
    try testing.expectError(error.OutOfMemory, a.alloc(u8, 16));
    // resize/remap/free of a block the adapter never made: refused or ignored.
    var buf: [16]u8 = undefined;
    try testing.expect(!a.rawResize(&buf, .@"1", 8, @returnAddress()));
    try testing.expect(a.rawRemap(&buf, .@"1", 32, @returnAddress()) == null);
    a.rawFree(&buf, .@"1", @returnAddress());
    none.allocator().rawFree(&buf, .@"1", @returnAddress());
}

test "arena (the Zig wrapper): std containers again after a reset that keeps the capacity" {
    var arena = try la.Arena.init(la.page());
    defer arena.deinit();
    try containers(arena.allocator());
    try testing.expect(arena.reset(.retain_capacity, 0));
    try containers(arena.allocator());
}

test "fixed buffer: Zig's suite again after a reset" {
    const buf = try std.heap.page_allocator.alloc(u8, 1 << 21);
    defer std.heap.page_allocator.free(buf);
    var fb: c.FixedBuffer = undefined;
    c.la_fixed_buffer_init(&fb, buf.ptr, buf.len);
    var ad: la.Adapter = .init(c.la_fixed_buffer_allocator(&fb));
    try zigSuite(ad.allocator());
    c.la_fixed_buffer_reset(&fb);
    try testing.expectEqual(@as(usize, 0), fb.end_index);
    try zigSuite(ad.allocator());
}

test "buffer-first: a small request lands in the buffer, a large one in the fallback" {
    var buf: [4096]u8 = undefined;
    var bf: c.BufferFirst = undefined;
    c.la_buffer_first_init(&bf, &buf, buf.len, c.la_smp_allocator());
    var ad: la.Adapter = .init(c.la_buffer_first_allocator(&bf));
    const a = ad.allocator();
    const small = try a.alloc(u8, 16);
    defer a.free(small);
    const large = try a.alloc(u8, 100_000);
    defer a.free(large);
    try testing.expect(c.la_buffer_first_owns(&bf, small.ptr));
    try testing.expect(!c.la_buffer_first_owns(&bf, large.ptr));
}

test "failing allocator: errors become error.OutOfMemory" {
    var ad: la.Adapter = .init(c.la_always_failing_allocator());
    const a = ad.allocator();
    try testing.expectError(error.OutOfMemory, a.alloc(u8, 1));
    const f = c.la_failing_create(c.la_c_allocator(), 3, 2) orelse return error.OutOfMemory;
    defer c.la_failing_destroy(f);
    var fad: la.Adapter = .init(c.la_failing_allocator(f));
    const fa = fad.allocator();
    var list: std.ArrayList(u8) = .empty;
    defer list.deinit(fa);
    var failed = false;
    for (0..100_000) |i| list.append(fa, @truncate(i)) catch {
        failed = true;
        break;
    };
    try testing.expect(failed);
}

test "pool of a Zig struct" {
    const Node = struct { next: ?*@This(), value: u64 };
    var pool = try la.Pool(Node).init(c.la_smp_allocator());
    defer pool.deinit();
    const n1 = try pool.create();
    n1.* = .{ .next = null, .value = 1 };
    const n2 = try pool.create();
    n2.* = .{ .next = n1, .value = 2 };
    try testing.expectEqual(@as(u64, 1), n2.next.?.value);
    pool.destroy(n2);
    try testing.expectEqual(n2, try pool.create());
    try testing.expect(pool.reset(.free_all, 0));
}

test "reverse: C code drives a Zig arena through la_allocator" {
    var arena = std.heap.ArenaAllocator.init(std.heap.page_allocator);
    defer arena.deinit();
    const zig_allocator = arena.allocator();
    try testing.expectEqual(@as(c_int, 0), drive_allocator(la.fromZig(&zig_allocator)));
}

test "reverse: C code drives std.testing.allocator (leak-checked)" {
    const zig_allocator = testing.allocator;
    try testing.expectEqual(@as(c_int, 0), drive_allocator(la.fromZig(&zig_allocator)));
}

test "round trip: Zig -> la -> Zig runs Zig's suite" {
    const zig_allocator = std.heap.page_allocator;
    var ad: la.Adapter = .init(la.fromZig(&zig_allocator));
    try both(ad.allocator());
}

test "debug allocator over smp behind a thread-safe wrapper, from threads" {
    const d = c.la_debug_create(c.la_smp_allocator(), null) orelse return error.OutOfMemory;
    const ts = c.la_thread_safe_create(c.la_debug_allocator(d)) orelse return error.OutOfMemory;
    var ad: la.Adapter = .init(c.la_thread_safe_allocator(ts));
    const a = ad.allocator();
    const Worker = struct {
        fn run(alloc: std.mem.Allocator) void {
            for (0..500) |i| {
                const s = std.fmt.allocPrint(alloc, "{d}", .{i}) catch return;
                alloc.free(s);
            }
        }
    };
    var threads: [3]std.Thread = undefined;
    for (&threads) |*t| t.* = try std.Thread.spawn(.{}, Worker.run, .{a});
    for (threads) |t| t.join();
    c.la_thread_safe_destroy(ts);
    try testing.expectEqual(@as(c_int, 0), c.la_debug_destroy(d));
}

extern fn drive_sizeof(which: c_int) usize;

test "hand-written declarations match the C header's layouts" {
    try testing.expectEqual(drive_sizeof(0), @sizeOf(c.Allocator));
    try testing.expectEqual(drive_sizeof(1), @sizeOf(c.VTable));
    try testing.expectEqual(drive_sizeof(2), @sizeOf(c.FixedBuffer));
    try testing.expectEqual(drive_sizeof(3), @sizeOf(c.BufferFirst));
    try testing.expectEqual(drive_sizeof(4), @sizeOf(c.ResetMode));
    try testing.expectEqual(drive_sizeof(5), @offsetOf(c.BufferFirst, "fallback"));
    try testing.expectEqual(drive_sizeof(6), @offsetOf(c.FixedBuffer, "end_index"));
}
