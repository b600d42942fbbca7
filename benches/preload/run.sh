#!/bin/sh
# run.sh: `make bench` for the malloc shim. Builds the workloads, makes sure
# matplotlib is importable (pip into build/pylib when missing) and runs
# bench.py, which writes build/preload_bench.md and build/preload_bench.png.
set -eu
BUILD=${BUILD:-build}
CC=${CC:-cc}
PYTHON=${PYTHON:-python3}
mkdir -p "$BUILD/preload"
$CC -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 -o "$BUILD/preload/workloads" benches/preload/workloads.c -lpthread
$CC -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 -o "$BUILD/preload/measure" benches/preload/measure.c
PYLIB=$(pwd)/$BUILD/pylib
export PYTHONPATH="$PYLIB${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PYTHON" -c 'import matplotlib' 2>/dev/null; then
    echo "installing matplotlib into $PYLIB"
    "$PYTHON" -m pip install --quiet --target "$PYLIB" matplotlib >/dev/null 2>&1 ||
        echo "pip install matplotlib failed: the table is written without a chart"
fi
nice "$PYTHON" benches/preload/bench.py "$BUILD" "$BUILD/preload/workloads" "$BUILD/preload/measure" "${LA_BENCH_ROUNDS:-5}"
