//! Zig package for liballoc: the module `liballoc` (liballoc.zig) linked
//! against liballoc.so, its tests and its benchmark.
//!
//!   zig build test  -Dlib-dir=<dir of liballoc.so> -Dinclude-dir=<dir of liballoc.h>
//!   zig build bench -Dlib-dir=... (ReleaseFast)
//!   zig build example -Dlib-dir=...   (examples/zig_example.zig)
//!
//! The defaults point into the liballoc source tree (../../build and
//! ../../include), which is how `make test` runs it.

const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});
    const lib_dir: std.Build.LazyPath = if (b.option([]const u8, "lib-dir", "directory holding liballoc.so")) |d|
        .{ .cwd_relative = d }
    else
        b.path("../../build");
    const include_dir: std.Build.LazyPath = if (b.option([]const u8, "include-dir", "directory holding liballoc.h")) |d|
        .{ .cwd_relative = d }
    else
        b.path("../../include");

    const mod = b.addModule("liballoc", .{
        .root_source_file = b.path("liballoc.zig"),
        .target = target,
        .optimize = optimize,
        .link_libc = true,
    });
    mod.addLibraryPath(lib_dir);
    mod.addRPath(lib_dir);
    mod.linkSystemLibrary("alloc", .{ .use_pkg_config = .no });

    // Tests: Zig's own allocator suite and std containers on every liballoc
    // allocator, and C code driving a Zig allocator.
    const test_mod = b.createModule(.{
        .root_source_file = b.path("tests/tests.zig"),
        .target = target,
        .optimize = optimize,
        .link_libc = true,
        .imports = &.{.{ .name = "liballoc", .module = mod }},
    });
    test_mod.addIncludePath(include_dir);
    test_mod.addCSourceFile(.{ .file = b.path("tests/drive.c"), .flags = &.{ "-std=c11", "-Wall", "-Wextra", "-Werror" } });
    const tests = b.addTest(.{ .root_module = test_mod });
    const run_tests = b.addRunArtifact(tests);
    run_tests.has_side_effects = true; // liballoc.so may change under the same inputs
    b.step("test", "run the binding's tests").dependOn(&run_tests.step);

    // The example in the repository's examples/ folder.
    const example_mod = b.createModule(.{
        .root_source_file = b.path("../../examples/zig_example.zig"),
        .target = target,
        .optimize = optimize,
        .link_libc = true,
        .imports = &.{.{ .name = "liballoc", .module = mod }},
    });
    const example = b.addExecutable(.{ .name = "zig_example", .root_module = example_mod });
    const run_example = b.addRunArtifact(example);
    run_example.has_side_effects = true;
    b.step("example", "run examples/zig_example.zig").dependOn(&run_example.step);

    // Benchmark: std.heap.smp_allocator against la_smp_allocator.
    const bench_mod = b.createModule(.{
        .root_source_file = b.path("bench.zig"),
        .target = target,
        .optimize = .ReleaseFast,
        .link_libc = true,
        .imports = &.{.{ .name = "liballoc", .module = mod }},
    });
    const bench = b.addExecutable(.{ .name = "bench", .root_module = bench_mod });
    const run_bench = b.addRunArtifact(bench);
    run_bench.has_side_effects = true;
    b.step("bench", "compare std.heap.smp_allocator with la_smp_allocator").dependOn(&run_bench.step);
}
