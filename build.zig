//! The liballoc Zig package. Zig programs depend on it as on any package:
//!
//!     zig fetch --save <git url, tarball or path of this repository>
//!
//! and, in their build.zig,
//!
//!     const liballoc = b.dependency("liballoc", .{ .target = target, .optimize = optimize });
//!     exe.root_module.addImport("liballoc", liballoc.module("liballoc"));
//!
//! The module `liballoc` (bindings/zig/liballoc.zig) links the static C
//! library, which this build produces with the project's own build: `make
//! build/liballoc.a` in the package root (make, cargo and a C compiler on
//! PATH; the archive is the part of `make lib` that the module needs), then
//! the archive is copied into the Zig cache and linked into whatever
//! imports the module. `make` is run on every build and does nothing when
//! the library is up to date.
//!
//! The package root is the repository root because the make build needs the
//! Makefile, the Rust sources and Cargo's files, which live here; the
//! binding's own tests, benchmark and example are in bindings/zig, a
//! separate project that depends on this package by path.
//!
//! Also exported: `liballoc.path("include")`, the directory of liballoc.h,
//! for C code in the depending project.

const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});

    // The project's build, in the package root, writes build/liballoc.a.
    const make_lib = b.addSystemCommand(&.{ "make", "-s", "build/liballoc.a" });
    make_lib.setCwd(b.path("."));
    make_lib.setName("make build/liballoc.a");

    // The archive, copied into the cache once make has run: a LazyPath that
    // carries the dependency on the make step, and whose content hash
    // relinks dependents when the library changes.
    const files = b.addWriteFiles();
    files.step.dependOn(&make_lib.step);
    const archive = files.addCopyFile(b.path("build/liballoc.a"), "liballoc.a");

    const mod = b.addModule("liballoc", .{
        .root_source_file = b.path("bindings/zig/liballoc.zig"),
        .target = target,
        .optimize = optimize,
        .link_libc = true,
    });
    mod.addObjectFile(archive);
    // What the Rust standard library in the archive needs beyond libc
    // (the Makefile's NATIVE_LIBS).
    mod.linkSystemLibrary("gcc_s", .{ .use_pkg_config = .no });
}
