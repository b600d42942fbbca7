//! Tests of the Zig binding: Zig's own allocator test suite
//! (std.heap.testAllocator*) and std containers on every general-purpose
//! liballoc allocator through `std.mem.Allocator`, and the reverse direction:
//! C code (drive.c) allocating through a Zig arena handed over as an
//! `la_allocator`.

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

test "page allocator" {
    try both(la.pageAllocator());
}

test "c allocator" {
    try both(la.cAllocator());
}

test "smp allocator" {
    try both(la.smpAllocator());
}

test "adapter over the smp la_allocator" {
    var ad: la.Adapter = .init(c.la_smp_allocator());
    try both(ad.allocator());
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

test "arena over page" {
    var arena = try la.Arena.init(la.page());
    defer arena.deinit();
    try both(arena.allocator());
    try testing.expect(arena.reset(.retain_capacity, 0));
    try containers(arena.allocator());
}

test "arena over smp" {
    var arena = try la.Arena.init(c.la_smp_allocator());
    defer arena.deinit();
    try both(arena.allocator());
}

test "fixed buffer" {
    const buf = try std.heap.page_allocator.alloc(u8, 1 << 21);
    defer std.heap.page_allocator.free(buf);
    var fb: c.FixedBuffer = undefined;
    c.la_fixed_buffer_init(&fb, buf.ptr, buf.len);
    var ad: la.Adapter = .init(c.la_fixed_buffer_allocator(&fb));
    try both(ad.allocator());
    c.la_fixed_buffer_reset(&fb);
    var ts: la.Adapter = .init(c.la_fixed_buffer_thread_safe_allocator(&fb));
    try both(ts.allocator());
}

test "buffer-first over c and smp" {
    var buf: [4096]u8 = undefined;
    var bf: c.BufferFirst = undefined;
    c.la_buffer_first_init(&bf, &buf, buf.len, c.la_c_allocator());
    var ad: la.Adapter = .init(c.la_buffer_first_allocator(&bf));
    try both(ad.allocator());
    c.la_buffer_first_init(&bf, &buf, buf.len, c.la_smp_allocator());
    try both(ad.allocator());
    // A small request lands in the buffer, a large one in the fallback.
    const a = ad.allocator();
    const small = try a.alloc(u8, 16);
    defer a.free(small);
    const large = try a.alloc(u8, 100_000);
    defer a.free(large);
    try testing.expect(c.la_buffer_first_owns(&bf, small.ptr));
    try testing.expect(!c.la_buffer_first_owns(&bf, large.ptr));
}

test "thread-safe over c and over an arena" {
    const ts = c.la_thread_safe_create(c.la_c_allocator()) orelse return error.OutOfMemory;
    defer c.la_thread_safe_destroy(ts);
    var ad: la.Adapter = .init(c.la_thread_safe_allocator(ts));
    try both(ad.allocator());

    var arena = try la.Arena.init(la.page());
    defer arena.deinit();
    const ts2 = c.la_thread_safe_create(arena.la()) orelse return error.OutOfMemory;
    defer c.la_thread_safe_destroy(ts2);
    var ad2: la.Adapter = .init(c.la_thread_safe_allocator(ts2));
    try both(ad2.allocator());
}

test "logging over c" {
    const fd = std.c.open("/dev/null", .{ .ACCMODE = .WRONLY });
    try testing.expect(fd >= 0);
    defer _ = std.c.close(fd);
    const lg = c.la_logging_create(c.la_c_allocator(), fd, 0) orelse return error.OutOfMemory;
    defer c.la_logging_destroy(lg);
    var ad: la.Adapter = .init(c.la_logging_allocator(lg));
    try both(ad.allocator());
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

test "debug allocator over c: clean under Zig's suite" {
    const d = c.la_debug_create(c.la_c_allocator(), null) orelse return error.OutOfMemory;
    var ad: la.Adapter = .init(c.la_debug_allocator(d));
    try both(ad.allocator());
    try testing.expect(!c.la_debug_detect_leaks(d));
    try testing.expectEqual(@as(c_int, 0), c.la_debug_destroy(d));
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

test "failing allocator that never fails passes Zig's suite" {
    const never = std.math.maxInt(usize);
    const f = c.la_failing_create(c.la_c_allocator(), never, never) orelse return error.OutOfMemory;
    defer c.la_failing_destroy(f);
    var ad: la.Adapter = .init(c.la_failing_allocator(f));
    try both(ad.allocator());
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
