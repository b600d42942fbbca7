//! The Zig binding's tests, benchmark and example. The module `liballoc`
//! comes from the package at the repository root (../../build.zig), a
//! dependency by path, exactly as a Zig project that fetched liballoc gets
//! it: that package runs `make lib` and links build/liballoc.a.
//!
//!   zig build test      Zig's allocator tests and std containers on every allocator
//!                       of c_tests/registry.h, and the binding's own tests
//!   zig build bench     std.heap.smp_allocator against la_smp_allocator (ReleaseFast)
//!   zig build example   examples/zig_example.zig
//!
//! `make zig-test`, `make zig-bench` and `make examples-check` run them.

const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});
    const liballoc = b.dependency("liballoc", .{ .target = target, .optimize = optimize });
    const mod = liballoc.module("liballoc");
    // Tests: Zig's own allocator suite and std containers on every
    // allocator of c_tests/registry.h, and C code driving a Zig allocator.
    const test_mod = b.createModule(.{
        .root_source_file = b.path("tests/tests.zig"),
        .target = target,
        .optimize = optimize,
        .link_libc = true,
        .imports = &.{.{ .name = "liballoc", .module = mod }},
    });
    test_mod.addIncludePath(liballoc.path("include"));
    test_mod.addCSourceFile(.{ .file = b.path("tests/drive.c"), .flags = &.{ "-std=c11", "-Wall", "-Wextra", "-Werror" } });
    // The allocators under test come from the C suites' registry
    // (c_tests/registry.h), through c_tests/registry_export.c. Zig's cache
    // of the test binary follows a C source file but not the headers it
    // includes, so the three files are compiled from copies in a folder
    // named by their content: an X line added to registry.h rebuilds.
    const registry = b.addWriteFiles();
    _ = registry.addCopyFile(b.path("../../c_tests/registry.h"), "registry.h");
    _ = registry.addCopyFile(b.path("../../c_tests/check.h"), "check.h");
    test_mod.addCSourceFile(.{
        .file = registry.addCopyFile(b.path("../../c_tests/registry_export.c"), "registry_export.c"),
        .flags = &.{ "-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror" },
    });
    const tests = b.addTest(.{ .root_module = test_mod });
    const run_tests = b.addRunArtifact(tests);
    run_tests.has_side_effects = true; // run every time, not only when rebuilt
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
