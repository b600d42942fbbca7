#!/usr/bin/env bash
# install_test: `make install` into a temporary prefix, build a C program with
# nothing but pkg-config (shared and static), run it, check the soname links,
# then `make uninstall` and check none of our files is left. Also installs
# once with DESTDIR (staged install: files under DESTDIR, paths without it).
#
# Run from the top of the repository by `make install-test`; prints
# "install_test: N passed, N failed" and exits non-zero on a failure.
set -uo pipefail

CC=${CC:-cc}
MAKE=${MAKE:-make}
CWARN="-std=c11 -Wall -Wextra -Wpedantic -Werror"
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
check() { # check "what" command...
    local what=$1
    shift
    if "$@" >"$tmp/out" 2>&1; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "install_test: FAILED: $what" >&2
        sed 's/^/    /' "$tmp/out" >&2
    fi
}

# Succeeds when the tree under $1 holds no files or links; lists them otherwise.
no_files_under() {
    local left
    left=$(find "$1" ! -type d)
    [ -z "$left" ] || { echo "left behind:"; echo "$left"; return 1; }
}

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
soversion=${version%%.*}

# ---- install into a fresh prefix ----
prefix=$tmp/prefix
check "make install PREFIX=$prefix" $MAKE -s --no-print-directory install PREFIX="$prefix"
lib=$prefix/lib
check "header installed" test -f "$prefix/include/liballoc.h"
check "static library installed" test -f "$lib/liballoc.a"
check "la-prof installed and runs" "$prefix/bin/la-prof" --version
check "real shared library installed" test -f "$lib/liballoc.so.$version"
check "liballoc.so.$soversion -> liballoc.so.$version" \
    test "$(readlink "$lib/liballoc.so.$soversion")" = "liballoc.so.$version"
check "liballoc.so -> liballoc.so.$soversion" \
    test "$(readlink "$lib/liballoc.so")" = "liballoc.so.$soversion"
check "SONAME is liballoc.so.$soversion" \
    grep -q "Library soname: \[liballoc.so.$soversion\]" <(readelf -d "$lib/liballoc.so.$version")

# ---- pkg-config ----
export PKG_CONFIG_PATH=$lib/pkgconfig
check "pkg-config finds liballoc" pkg-config --exists liballoc
check "pkg-config version is $version" test "$(pkg-config --modversion liballoc)" = "$version"
check "pkg-config prefix is the install prefix" \
    test "$(pkg-config --variable=prefix liballoc)" = "$prefix"
cflags=$(pkg-config --cflags liballoc)
libs=$(pkg-config --libs liballoc)

# ---- a program linked against the installed shared library ----
# shellcheck disable=SC2086
check "compile with pkg-config --cflags --libs" \
    $CC $CWARN -o "$tmp/smoke" c_tests/install_smoke.c $cflags $libs
check "program needs liballoc.so.$soversion" \
    grep -q "Shared library: \[liballoc.so.$soversion\]" <(readelf -d "$tmp/smoke")
check "program resolves liballoc from the prefix" \
    grep -q "liballoc.so.$soversion => $lib/" <(LD_LIBRARY_PATH=$lib ldd "$tmp/smoke")
check "program runs" env LD_LIBRARY_PATH="$lib" "$tmp/smoke"
check "program prints the version" \
    grep -q "^liballoc $version installed" <(LD_LIBRARY_PATH=$lib "$tmp/smoke")

# ---- the same program linked statically against liballoc.a ----
static_libs=$(pkg-config --static --libs liballoc)
# shellcheck disable=SC2086
check "compile -static with pkg-config --static" \
    $CC $CWARN -static -o "$tmp/smoke_static" c_tests/install_smoke.c $cflags $static_libs
check "static program has no dynamic section" \
    bash -c "! readelf -d '$tmp/smoke_static' | grep -q NEEDED"
check "static program runs without the library" \
    grep -q "^liballoc $version installed" <(env -u LD_LIBRARY_PATH "$tmp/smoke_static")

# ---- uninstall leaves nothing of ours ----
check "make uninstall" $MAKE -s --no-print-directory uninstall PREFIX="$prefix"
check "prefix holds no files after uninstall" no_files_under "$prefix"

# ---- staged install (DESTDIR): files under DESTDIR, paths without it ----
stage=$tmp/stage
check "make install DESTDIR=... PREFIX=/opt/la" \
    $MAKE -s --no-print-directory install DESTDIR="$stage" PREFIX=/opt/la
check "staged files under DESTDIR" test -f "$stage/opt/la/lib/liballoc.so.$version"
check "staged pkg-config file names the final prefix" \
    grep -qx "prefix=/opt/la" "$stage/opt/la/lib/pkgconfig/liballoc.pc"
check "make uninstall DESTDIR=..." \
    $MAKE -s --no-print-directory uninstall DESTDIR="$stage" PREFIX=/opt/la
check "stage holds no files after uninstall" no_files_under "$stage"

# The install leaves nothing behind in the source tree either.
check "no liballoc.pc left in the source tree" test ! -e "$root/liballoc.pc"

echo "install_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
