//! A minimal Zig project that uses liballoc the way Zig projects use any
//! package: the dependency is added by `zig fetch --save=liballoc <source>`
//! (which writes it into build.zig.zon), and the two lines below import
//! the module. No library or include paths are passed.
//!
//! `make zig-package-test` copies this folder to build/zig-consumer/app,
//! fetches a copy of the repository into it and runs `zig build test`.

const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});

    const tests_mod = b.createModule(.{
        .root_source_file = b.path("consumer_tests.zig"),
        .target = target,
        .optimize = optimize,
    });
    const liballoc = b.dependency("liballoc", .{ .target = target, .optimize = optimize });
    tests_mod.addImport("liballoc", liballoc.module("liballoc"));

    const tests = b.addTest(.{ .root_module = tests_mod });
    const run_tests = b.addRunArtifact(tests);
    run_tests.has_side_effects = true;
    b.step("test", "Zig's allocator tests through the liballoc package").dependOn(&run_tests.step);
}
