#!/bin/sh
# run.sh: `make scale-bench`. Installs what is missing (the peer mallocs and
# strace, through mk/ensure-tools.sh; matplotlib with pip into build/pylib),
# builds the workloads (scale.c) and the measure launcher shared with the
# preload benchmark, and runs bench.py, which writes build/scale_bench.md
# and build/scale_bench.png. LA_BENCH_ROUNDS (default 3) and
# LA_SCALE_THREADS ("1 4 16"; default 1, 2, 4, ... cores, 2 x cores) set
# the rounds and the thread counts.
set -eu
BUILD=${BUILD:-build}
CC=${CC:-cc}
PYTHON=${PYTHON:-python3}
CC="$CC" bash mk/ensure-tools.sh libmimalloc.so.2 libjemalloc.so.2 libtcmalloc_minimal.so.4 ||
    echo "a peer malloc could not be installed: its column stays out"
CC="$CC" bash mk/ensure-tools.sh strace ||
    echo "strace could not be installed: no system-call table"
mkdir -p "$BUILD/scale"
$CC -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 -o "$BUILD/scale/scale" benches/scale/scale.c -lpthread
$CC -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 -o "$BUILD/scale/measure" benches/preload/measure.c
PYLIB=$(pwd)/$BUILD/pylib
export PYTHONPATH="$PYLIB${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PYTHON" -c 'import matplotlib' 2>/dev/null; then
    echo "installing matplotlib into $PYLIB"
    "$PYTHON" -m pip install --quiet --target "$PYLIB" matplotlib >/dev/null 2>&1 ||
        echo "pip install matplotlib failed: the tables are written without a chart"
fi
nice "$PYTHON" benches/scale/bench.py "$BUILD" "$BUILD/scale/scale" "$BUILD/scale/measure" "${LA_BENCH_ROUNDS:-3}"
