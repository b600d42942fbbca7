//! Benchmark: the same allocation work through `std.heap.smp_allocator` and
//! through `la_smp_allocator` (via the binding), measured in one run so the
//! machine's noise hits both; prints ns per operation and the ratio
//! (std / liballoc: above 1 means liballoc is faster). Figures, not a test.
//!
//! Workloads:
//! - churn: a window of 1000 live blocks of 8..1024 bytes, each step frees
//!   one at random and allocates a new one (one thread, then two threads);
//! - grow: ArrayLists grown by appending, then freed;
//! - mixed: short-lived strings from allocPrint and hash-map inserts.

const std = @import("std");
const la = @import("liballoc");

extern "c" fn clock_gettime(clk: c_int, tp: *Timespec) c_int;
const Timespec = extern struct { sec: isize, nsec: isize };

fn nowNs() u64 {
    var ts: Timespec = undefined;
    _ = clock_gettime(1, &ts); // CLOCK_MONOTONIC
    return @as(u64, @intCast(ts.sec)) * std.time.ns_per_s + @as(u64, @intCast(ts.nsec));
}

const churn_steps = 100_000;
const window = 1000;

fn churn(a: std.mem.Allocator, seed: u64) !u64 {
    var prng = std.Random.DefaultPrng.init(seed);
    const r = prng.random();
    var live: [window][]u8 = undefined;
    for (&live) |*s| s.* = try a.alloc(u8, 8 + r.uintLessThan(usize, 1017));
    for (0..churn_steps) |_| {
        const i = r.uintLessThan(usize, window);
        a.free(live[i]);
        const n = 8 + (r.uintLessThan(usize, 1017) >> @intCast(r.uintLessThan(usize, 6)));
        live[i] = try a.alloc(u8, n);
        live[i][0] = 1;
    }
    for (live) |s| a.free(s);
    return churn_steps * 2;
}

fn churnThread(a: std.mem.Allocator, seed: u64, ops: *u64) void {
    ops.* = churn(a, seed) catch 0;
}

fn churn2(a: std.mem.Allocator, seed: u64) !u64 {
    var ops: [2]u64 = .{ 0, 0 };
    const t0 = try std.Thread.spawn(.{}, churnThread, .{ a, seed, &ops[0] });
    const t1 = try std.Thread.spawn(.{}, churnThread, .{ a, seed + 1, &ops[1] });
    t0.join();
    t1.join();
    return ops[0] + ops[1];
}

fn grow(a: std.mem.Allocator, seed: u64) !u64 {
    _ = seed;
    var ops: u64 = 0;
    for (0..100) |round| {
        var list: std.ArrayList(u32) = .empty;
        defer list.deinit(a);
        for (0..2000 + round * 10) |i| {
            try list.append(a, @intCast(i));
            ops += 1;
        }
    }
    return ops;
}

fn mixed(a: std.mem.Allocator, seed: u64) !u64 {
    var ops: u64 = 0;
    var map = std.AutoHashMap(u64, []u8).init(a);
    defer {
        var it = map.valueIterator();
        while (it.next()) |v| a.free(v.*);
        map.deinit();
    }
    for (0..30_000) |i| {
        const key = (i *% 2654435761 +% seed) % 5000;
        const s = try std.fmt.allocPrint(a, "item-{d}-{d}", .{ key, i });
        if (try map.fetchPut(key, s)) |old| a.free(old.value);
        ops += 2;
    }
    return ops;
}

const Work = struct { name: []const u8, run: *const fn (std.mem.Allocator, u64) anyerror!u64 };

fn measure(a: std.mem.Allocator, w: Work) !f64 {
    var best: f64 = std.math.inf(f64);
    for (0..1) |rep| {
        const t0 = nowNs();
        const ops = try w.run(a, 0x5eed + rep);
        const dt = nowNs() - t0;
        best = @min(best, @as(f64, @floatFromInt(dt)) / @as(f64, @floatFromInt(ops)));
    }
    return best;
}

pub fn main() !void {
    const works = [_]Work{
        .{ .name = "churn 1 thread", .run = churn },
        .{ .name = "churn 2 threads", .run = churn2 },
        .{ .name = "ArrayList grow", .run = grow },
        .{ .name = "allocPrint+map", .run = mixed },
    };
    const theirs = std.heap.smp_allocator;
    const ours = la.smpAllocator();
    // glibc malloc through the same binding: a peer that shows how much of a
    // difference is the binding and how much the allocator.
    const libc = la.cAllocator();
    std.debug.print("zig bench: ns/op (best of 2), std.heap.smp_allocator vs la_smp_allocator (and la_c_allocator for reference)\n", .{});
    std.debug.print("{s:<18} {s:>10} {s:>10} {s:>10} {s:>8}\n", .{ "workload", "std smp", "la smp", "la c", "std/la" });
    var log_sum: f64 = 0;
    for (works) |w| {
        // Alternate the order so warm-up effects do not favour one side.
        const s1 = try measure(theirs, w);
        const l1 = try measure(ours, w);
        const l2 = try measure(ours, w);
        const s2 = try measure(theirs, w);
        const cl = try measure(libc, w);
        const s = @min(s1, s2);
        const l = @min(l1, l2);
        log_sum += @log(s / l);
        std.debug.print("{s:<18} {d:>10.1} {d:>10.1} {d:>10.1} {d:>8.2}\n", .{ w.name, s, l, cl, s / l });
    }
    std.debug.print("geometric mean std/la: {d:.2} (above 1: liballoc faster)\n", .{@exp(log_sum / works.len)});
}
