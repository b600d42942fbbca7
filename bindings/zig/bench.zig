//! Benchmark: the same allocation work through `std.heap.smp_allocator` and
//! through `la_smp_allocator` (via the binding), measured in one run so the
//! machine's noise hits both; prints ns per operation and the ratio
//! (std / liballoc: above 1 means liballoc is faster), as the median and
//! spread of interleaved rounds, and the time of one round of every
//! workload, as one program, on each side. Figures, not a test.
//!
//! Workloads:
//! - churn: a window of 1000 live blocks of 8..1024 bytes, each step frees
//!   one at random and allocates a new one (one thread, then two threads);
//! - grow: ArrayLists grown by appending, then freed;
//! - mixed: short-lived strings from allocPrint and hash-map inserts.

const std = @import("std");
const la = @import("liballoc");

extern "c" fn getenv(name: [*:0]const u8) ?[*:0]const u8;
extern "c" fn clock_gettime(clk: c_int, tp: *Timespec) c_int;
const Timespec = extern struct { sec: isize, nsec: isize };

fn nowNs() u64 {
    var ts: Timespec = undefined;
    _ = clock_gettime(1, &ts); // CLOCK_MONOTONIC
    return @as(u64, @intCast(ts.sec)) * std.time.ns_per_s + @as(u64, @intCast(ts.nsec));
}

const churn_steps = 1_000_000;
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
    for (0..4000) |round| {
        var list: std.ArrayList(u32) = .empty;
        defer list.deinit(a);
        for (0..2000 + (round % 100) * 10) |i| {
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
    for (0..200_000) |i| {
        const key = (i *% 2654435761 +% seed) % 5000;
        const s = try std.fmt.allocPrint(a, "item-{d}-{d}", .{ key, i });
        if (try map.fetchPut(key, s)) |old| a.free(old.value);
        ops += 2;
    }
    return ops;
}

const Work = struct { name: []const u8, run: *const fn (std.mem.Allocator, u64) anyerror!u64 };

/// One timed run of `w` on `a`: nanoseconds per operation.
/// Operations done by the last `once` (the same for every allocator).
var last_ops: u64 = 0;

fn once(a: std.mem.Allocator, w: Work, seed: u64) !f64 {
    const t0 = nowNs();
    const ops = try w.run(a, seed);
    const dt = nowNs() - t0;
    last_ops = ops;
    return @as(f64, @floatFromInt(dt)) / @as(f64, @floatFromInt(ops));
}

/// Rounds per workload. Each round runs both allocators on the same seed,
/// alternating which goes first, so slow spells of the shared machine hit
/// both sides of a round alike; the per-round ratio is what is summarised.
const rounds = 15;

fn lessThan(_: void, x: f64, y: f64) bool {
    return x < y;
}
/// The `q`-quantile (0..1) of `v` (sorted in place), nearest rank.
fn quantile(v: []f64, q: f64) f64 {
    std.mem.sort(f64, v, {}, lessThan);
    const i: usize = @intFromFloat(@round(q * @as(f64, @floatFromInt(v.len - 1))));
    return v[i];
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

    // LA_BENCH_ONE=<workload 0..3>:<std|la|c>: one untimed run of one
    // workload on one allocator, for instruction counts under
    // valgrind --tool=callgrind.
    if (getenv("LA_BENCH_ONE")) |one_z| {
        const one = std.mem.span(one_z);
        const colon = std.mem.indexOfScalar(u8, one, ':') orelse one.len;
        const w = works[try std.fmt.parseInt(usize, one[0..colon], 10)];
        const side = if (colon < one.len) one[colon + 1 ..] else "la";
        const a = if (std.mem.eql(u8, side, "std")) theirs else if (std.mem.eql(u8, side, "c")) libc else ours;
        _ = try w.run(a, 0x5eed);
        return;
    }

    std.debug.print("zig bench: ns/op, median of {d} interleaved rounds after a warm-up;\n", .{rounds});
    std.debug.print("std/la = per-round ratio std.heap.smp_allocator / la_smp_allocator (above 1: liballoc faster),\n", .{});
    std.debug.print("median [min..max]; la c = la_c_allocator (glibc malloc) through the binding, for reference\n", .{});
    std.debug.print("{s:<18} {s:>9} {s:>9} {s:>9} {s:>8} {s:>15}\n", .{ "workload", "std smp", "la smp", "la c", "std/la", "spread" });
    var log_sum: f64 = 0;
    // One round of every workload, as one program: median ms per workload.
    var program_std: f64 = 0;
    var program_la: f64 = 0;
    for (works) |w| {
        // Warm-up: fault in both heaps (and their thread caches) first.
        _ = try once(theirs, w, 1);
        _ = try once(ours, w, 1);
        _ = try once(libc, w, 1);
        var s: [rounds]f64 = undefined;
        var l: [rounds]f64 = undefined;
        var cl: [rounds]f64 = undefined;
        var ratio: [rounds]f64 = undefined;
        for (0..rounds) |r| {
            const seed = 0x5eed + r;
            if (r % 2 == 0) {
                s[r] = try once(theirs, w, seed);
                l[r] = try once(ours, w, seed);
            } else {
                l[r] = try once(ours, w, seed);
                s[r] = try once(theirs, w, seed);
            }
            cl[r] = try once(libc, w, seed);
            ratio[r] = s[r] / l[r];
        }
        const med = quantile(&ratio, 0.5);
        log_sum += @log(med);
        const ops: f64 = @floatFromInt(last_ops);
        program_std += quantile(&s, 0.5) * ops / 1e6;
        program_la += quantile(&l, 0.5) * ops / 1e6;
        std.debug.print("{s:<18} {d:>9.2} {d:>9.2} {d:>9.2} {d:>8.2}   [{d:.2}..{d:.2}]\n", .{
            w.name, quantile(&s, 0.5), quantile(&l, 0.5), quantile(&cl, 0.5),
            med,    ratio[0],          ratio[rounds - 1],
        });
    }
    std.debug.print("geometric mean of the median ratios std/la: {d:.2} (above 1: liballoc faster)\n", .{@exp(log_sum / works.len)});
    std.debug.print("whole program (one round of every workload, medians): std {d:.1} ms, la {d:.1} ms, std/la {d:.2}\n", .{
        program_std, program_la, program_std / program_la,
    });
}
