#!/bin/sh
# run.sh: `make debug-bench`. Times a leak check of the same programs run
# natively, under `la-run --debug` and under valgrind memcheck
# (--leak-check=full), and prints slowdown ratios (benches/debug/bench.py).
# The workload suite is also built with AddressSanitizer, when the compiler
# can, as a reference for what a compiled-in checker costs.
set -eu
BUILD=${BUILD:-build}
CC=${CC:-cc}
PYTHON=${PYTHON:-python3}
if ! command -v valgrind >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y valgrind >/dev/null 2>&1 ||
        echo "valgrind could not be installed: its column stays empty"
fi
mkdir -p "$BUILD/preload"
$CC -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 -g -fno-omit-frame-pointer \
    -o "$BUILD/debug/workloads" benches/preload/workloads.c -lpthread
# The thread-scaling benchmark's program (benches/scale), for the debug
# mode's scaling table.
$CC -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 -g -fno-omit-frame-pointer \
    -o "$BUILD/debug/scale" benches/scale/scale.c -lpthread
rm -f "$BUILD/debug/workloads_asan"
if ! $CC -std=c11 -O2 -g -fno-omit-frame-pointer -fsanitize=address \
        -o "$BUILD/debug/workloads_asan" benches/preload/workloads.c -lpthread 2>/dev/null ||
    ! "$BUILD/debug/workloads_asan" realloc >/dev/null 2>&1; then
    rm -f "$BUILD/debug/workloads_asan"
    echo "no AddressSanitizer here: its column stays empty"
fi
nice "$PYTHON" benches/debug/bench.py "$BUILD" "${LA_BENCH_ROUNDS:-3}"
