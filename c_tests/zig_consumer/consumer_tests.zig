//! Zig's allocator conformance tests (std.heap.testAllocator*) through
//! liballoc's general-purpose allocator, imported from the fetched package.

const std = @import("std");
const liballoc = @import("liballoc");

test "std.heap.testAllocator* on la_smp_allocator" {
    const a = liballoc.smpAllocator();
    try std.heap.testAllocator(a);
    try std.heap.testAllocatorAligned(a);
    try std.heap.testAllocatorLargeAlignment(a);
    try std.heap.testAllocatorAlignedShrink(a);
}

test "std containers on la_smp_allocator" {
    const a = liballoc.smpAllocator();
    var list: std.ArrayList(u64) = .empty;
    defer list.deinit(a);
    for (0..100_000) |i| try list.append(a, i);
    try std.testing.expectEqual(@as(u64, 99_999), list.items[99_999]);

    var map = std.AutoHashMap(u32, u32).init(a);
    defer map.deinit();
    for (0..10_000) |i| try map.put(@intCast(i), @intCast(i + 1));
    try std.testing.expectEqual(@as(?u32, 5_001), map.get(5_000));
}
