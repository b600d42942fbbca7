#!/bin/sh
# run_tests.sh: the heap profiler's tests (run by `make profile-test`).
#
# 1. Known sites (profile_sites.c) at a 64 KiB rate: the bytes attributed to
#    each site, allocated and live, are within 4 standard deviations of the
#    truth (check_profile.py states the estimator and its error), and the
#    samples made inside a library built without frame pointers unwind to
#    their caller in the program. la_profile_dump writes a dump under the
#    shim and returns false without it.
# 2. Threads and fork (profile_threads.c): samples of exited threads stay;
#    a forked child writes its own file (FILE.<pid>).
# 3. la-run --profile=FILE and --profile (la-profile.<pid>.raw in the
#    working directory).
# 4. LA_PROFILE_INTERVAL and LA_PROFILE_SIGNAL on python3 (built without
#    frame pointers): several well-formed dumps in one file, output
#    unchanged; a sample's lifetime in milliseconds matches the time the
#    program kept the block.
# 5. Bad input: an unwritable path, a zero or absurd rate: one warning,
#    the program runs and its exit status is unchanged.
# 6. Profiling changes nothing a program sees: the shim's conformance
#    program and its thread/fork churn pass with a sample every 4 KiB and
#    a dump every second, and every process's dump is well-formed. With
#    every allocation sampled (profile_every.c), the malloc API behaves on
#    sampled blocks as on any (sizes, alignment, contents, zeroing,
#    realloc's copies), and every free is seen: only the blocks the
#    program kept are live in the dump.
#
# Environment: CC, CWARN, BUILD, PYTHON (from mk/profile.mk).
set -u
CC=${CC:-cc}
CWARN=${CWARN:--std=c11 -Wall -Wextra -Wpedantic -Werror}
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-python3}
ROOT=$(pwd)
SHIM=$ROOT/$BUILD/liballoc_preload.so
LA_RUN=$ROOT/$BUILD/la-run
LA_PROF=$ROOT/$BUILD/la-prof
OUT=$ROOT/$BUILD/profile
CHECK="$PYTHON $ROOT/c_tests/profile/check_profile.py"
TMP=$(mktemp -d /tmp/la_profile.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
# check NAME CMD...: runs CMD, ok when it succeeds.
check() {
    name=$1
    shift
    if "$@" >"$TMP/log" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/     | /' "$TMP/log" | tail -n 30; fi
}
build() {
    "$@" >"$TMP/build.log" 2>&1 || { echo "build failed: $*"; cat "$TMP/build.log"; exit 1; }
}

build $CC $CWARN -O2 -g -fPIC -shared -fomit-frame-pointer -o "$OUT/libprof_nofp.so" \
    c_tests/profile/nofp_lib.c
build $CC $CWARN -O2 -g -fno-omit-frame-pointer -Iinclude -o "$OUT/profile_sites" \
    c_tests/profile/profile_sites.c -L"$OUT" -lprof_nofp -Wl,-rpath,"$OUT" \
    -L"$BUILD" -lalloc -Wl,-rpath,"$ROOT/$BUILD"
build $CC $CWARN -O2 -g -fno-omit-frame-pointer -o "$OUT/profile_threads" \
    c_tests/profile/profile_threads.c -lpthread
build $CC $CWARN -O2 -g -Ic_tests -o "$OUT/preload_conformance" c_tests/preload_conformance.c
build $CC $CWARN -O2 -g -Ic_tests -o "$OUT/preload_churn" c_tests/preload_churn.c -lpthread
build $CC $CWARN -O2 -g -o "$OUT/profile_every" c_tests/profile/profile_every.c -ldl

# ---- 1. known sites
sites() {
    LA_PROFILE=$TMP/sites.raw LA_PROFILE_RATE=64k LD_PRELOAD=$SHIM \
        "$OUT/profile_sites" "$TMP/mid.raw" >"$TMP/sites.out" || return 1
    grep -q '^la_profile_dump: written$' "$TMP/sites.out" || return 1
    $CHECK dumps "$TMP/mid.raw" 1 || return 1
    $CHECK sites "$TMP/sites.raw" "$OUT/profile_sites" "$OUT/libprof_nofp.so"
}
check "known sites within 4 sd, unwound through a library without frame pointers" sites
# The converter reads what the runtime writes (c_tests/prof tests it on a
# generated dump): the sites that keep memory are in its table of live
# bytes, the churning one in its table of allocated bytes.
la_prof_reads() {
    top=$("$LA_PROF" "$TMP/sites.raw" --top 10) || return 1
    for s in site_big site_live site_leak; do
        echo "$top" | grep -q " $s\$" || { echo "no $s in:"; echo "$top"; return 1; }
    done
    top=$("$LA_PROF" "$TMP/sites.raw" --top 10 --alloc) || return 1
    echo "$top" | grep -q ' site_churn$' || { echo "no site_churn in:"; echo "$top"; return 1; }
}
check "la-prof reads the dump: the known sites in its tables" la_prof_reads
without_shim() {
    "$OUT/profile_sites" "$TMP/none.raw" | grep -q '^la_profile_dump: not written$' &&
        test ! -s "$TMP/none.raw"
}
check "la_profile_dump without the shim returns false" without_shim

# ---- 2. threads and fork
threads() {
    mkdir -p "$TMP/thr" && rm -f "$TMP/thr"/*
    LA_PROFILE=$TMP/thr/t.raw LA_PROFILE_RATE=64k LD_PRELOAD=$SHIM \
        "$OUT/profile_threads" >"$TMP/thr.out" || return 1
    child=$(sed -n 's/^child //p' "$TMP/thr.out")
    test -s "$TMP/thr/t.raw.$child" || { echo "no child profile t.raw.$child"; ls "$TMP/thr"; return 1; }
    $CHECK threads "$TMP/thr/t.raw" "$TMP/thr/t.raw.$child" "$OUT/profile_threads"
}
check "exited threads keep their samples; a forked child writes its own file" threads

# The map lines: from the loader's list of modules when every module has an
# absolute path, from /proc/self/maps otherwise (a shim preloaded by a
# relative path); both name the same files, offsets and lengths.
same_maps() {
    # Through a symbolic link: the loader names the shim by the link, the
    # maps file by its target, so the lines tell which source wrote them.
    ln -sf "$SHIM" "$TMP/link.so" || return 1
    LA_PROFILE="$TMP/abs.raw" LD_PRELOAD=$TMP/link.so "$OUT/profile_sites" >/dev/null || return 1
    grep -q "^map .* $TMP/link.so\$" "$TMP/abs.raw" || { echo "not from the loader"; return 1; }
    rel=$(realpath -s --relative-to=. "$TMP/link.so")
    case $rel in */*) ;; *) rel=./$rel ;; esac
    LA_PROFILE="$TMP/rel.raw" LD_PRELOAD=$rel "$OUT/profile_sites" >/dev/null || return 1
    grep -q "^map .* $(realpath "$SHIM")\$" "$TMP/rel.raw" || { echo "not from the maps file"; return 1; }
    "$PYTHON" - "$TMP/abs.raw" "$TMP/rel.raw" <<'PY'
import os, sys
def maps(path):
    out = set()
    # The text header ends at "data"; the binary items follow.
    for raw in open(path, "rb"):
        if raw == b"data\n":
            break
        line = raw.decode()
        if line.startswith("map "):
            _, span, perms, off, name = line.rstrip("\n").split(" ", 4)
            lo, hi = (int(x, 16) for x in span.split("-"))
            out.add((os.path.realpath(name), perms, int(off, 16), hi - lo))
    return out
a, r = maps(sys.argv[1]), maps(sys.argv[2])
if not a or a != r:
    sys.exit(f"map lines differ:\n loader: {sorted(a)}\n maps file: {sorted(r)}")
if not any("libprof_nofp" in n for n, _, _, _ in a):
    sys.exit("no map line for the test's library")
PY
}
check "a dump's map lines name the same files, offsets and lengths from the loader and from the maps file" same_maps

# ---- 3. la-run
la_run_file() {
    LA_PRELOAD_LIB=$SHIM "$LA_RUN" --profile="$TMP/run.%p.raw" "$OUT/profile_threads" \
        >"$TMP/run.out" || return 1
    n=$(ls "$TMP" | grep -c '^run\.[0-9]*\.raw$')
    test "$n" = 2 || { echo "expected 2 profiles (parent, child), found $n"; return 1; }
    for f in "$TMP"/run.*.raw; do $CHECK dumps "$f" 1 || return 1; done
}
check "la-run --profile=FILE (%p: one file per process)" la_run_file
la_run_default() {
    mkdir -p "$TMP/cwd" && cd "$TMP/cwd" || return 1
    LA_PRELOAD_LIB=$SHIM "$LA_RUN" --profile "$OUT/profile_sites" >/dev/null || return 1
    cd "$ROOT" || return 1
    f=$(ls "$TMP/cwd" | grep '^la-profile\.[0-9]*\.raw$')
    test -n "$f" || { echo "no la-profile.<pid>.raw"; ls "$TMP/cwd"; return 1; }
    $CHECK dumps "$TMP/cwd/$f" 1
}
check "la-run --profile writes la-profile.<pid>.raw" la_run_default
# A process that took no sample makes no file of its own (%p); a shared
# path is still emptied and gets a dump (never an earlier run's profile).
no_sample_no_file() {
    mkdir -p "$TMP/quiet" && rm -f "$TMP/quiet"/*
    # `env true` (two processes) allocates next to nothing: at a 1 TiB rate it
    # takes no sample.
    LA_PROFILE=$TMP/quiet/p.%p.raw LA_PROFILE_RATE=1024g LD_PRELOAD=$SHIM env true || return 1
    test -z "$(ls "$TMP/quiet")" || { echo "files made: $(ls "$TMP/quiet")"; return 1; }
    # A sampled program writes its file.
    LA_PROFILE=$TMP/quiet/p.%p.raw LA_PROFILE_RATE=4k LD_PRELOAD=$SHIM \
        "$OUT/profile_threads" >/dev/null || return 1
    test -n "$(ls "$TMP/quiet")" || { echo "no file from a sampled program"; return 1; }
    echo stale >"$TMP/quiet/shared.raw"
    LA_PROFILE=$TMP/quiet/shared.raw LA_PROFILE_RATE=1024g LD_PRELOAD=$SHIM env true || return 1
    ! grep -q stale "$TMP/quiet/shared.raw" || { echo "an earlier run's file kept"; return 1; }
    $CHECK dumps "$TMP/quiet/shared.raw" 1
}
check "no sample, no file of its own (%p); a shared path is emptied" no_sample_no_file
# The profile's tables are mapped by the first sample: a process that takes
# none makes no system call for them (LA_STATS counts the shim's mappings).
no_sample_no_tables() {
    out=$(LA_STATS=1 LA_PROFILE=$TMP/quiet/q.%p.raw LA_PROFILE_RATE=1024g LD_PRELOAD=$SHIM \
        /bin/true 2>&1) || return 1
    echo "$out" | grep -q 'system calls: mmap 0,' || { echo "$out" | grep 'system calls'; return 1; }
}
check "no sample, no mapping for the profile's tables" no_sample_no_tables
# A shared path belongs to the first process: the programs it runs while it
# lives write FILE.<pid> (before, each emptied FILE when it started, and
# only the last processes' dumps were left).
programs_run() {
    mkdir -p "$TMP/runs" && rm -f "$TMP/runs"/*
    LA_PROFILE=$TMP/runs/p.raw LA_PROFILE_RATE=64k LD_PRELOAD=$SHIM sh -c \
        "'$OUT/profile_sites' '$TMP/m1.raw' >/dev/null && '$OUT/profile_sites' '$TMP/m2.raw' >/dev/null" ||
        return 1
    # The shell claimed FILE (and leaves it without a dump: it ends with
    # _exit).
    test -f "$TMP/runs/p.raw" || { echo "no p.raw"; return 1; }
    n=$(ls "$TMP/runs" | grep -c '^p\.raw\.[0-9]*$')
    test "$n" = 2 || { echo "expected 2 files p.raw.<pid>, found: $(ls "$TMP/runs")"; return 1; }
    for f in "$TMP"/runs/p.raw.*; do
        $CHECK sites "$f" "$OUT/profile_sites" "$OUT/libprof_nofp.so" || return 1
    done
}
check "a shared path: the programs the profiled one runs write FILE.<pid>" programs_run

# ---- 4. interval and signal dumps, on python3
PY_PROG='import json, time
d = []
for i in range(60):
    d.append(json.dumps({"k%d" % j: [j] * 50 for j in range(200)}))
    time.sleep(0.05)
print(len(d), sum(map(len, d)))'
interval() {
    $PYTHON -c "$PY_PROG" >"$TMP/py.expected" || return 1
    LA_PROFILE=$TMP/int.raw LA_PROFILE_INTERVAL=1 LA_PROFILE_RATE=64k LD_PRELOAD=$SHIM \
        $PYTHON -c "$PY_PROG" >"$TMP/py.out" || return 1
    cmp "$TMP/py.expected" "$TMP/py.out" || return 1
    $CHECK dumps "$TMP/int.raw" 3 || return 1
    # The converter charts the snapshots.
    "$LA_PROF" "$TMP/int.raw" --chart "$TMP/int.png" >/dev/null || return 1
    test -s "$TMP/int.png"
}
check "LA_PROFILE_INTERVAL=1 on python3: snapshots and the exit dump" interval
signal_dump() {
    LA_PROFILE=$TMP/sig.raw LA_PROFILE_SIGNAL=1 LD_PRELOAD=$SHIM \
        $PYTHON -c 'import os, signal; x = [bytes(1000) for _ in range(5000)]; os.kill(os.getpid(), signal.SIGUSR2); print("alive")' \
        >"$TMP/sig.out" || return 1
    grep -q alive "$TMP/sig.out" && $CHECK dumps "$TMP/sig.raw" 2
}
check "LA_PROFILE_SIGNAL=1: SIGUSR2 appends a dump" signal_dump
# A sample's times are milliseconds by the monotonic clock (the time-stamp
# counter's ticks scaled at the dump where it is steady): a block that
# python keeps for 300 ms shows that lifetime.
lifetimes() {
    LA_PROFILE=$TMP/life.raw LD_PRELOAD=$SHIM $PYTHON -c \
        'import time; b = bytearray(8 << 20); time.sleep(0.3); del b; time.sleep(0.1)' || return 1
    $CHECK times "$TMP/life.raw" 8388608 300
}
check "sample times: a block kept 300 ms lives 300 ms in the dump" lifetimes

# ---- 5. bad input
# bad_input NAME EXPECTED_STDERR VAR=VALUE...: the program runs to its end
# with status 0 and prints one warning matching EXPECTED_STDERR.
bad_input() {
    name=$1
    want=$2
    shift 2
    if env "$@" LD_PRELOAD="$SHIM" "$OUT/profile_sites" >"$TMP/bad.out" 2>"$TMP/bad.err" &&
        grep -q '^done$' "$TMP/bad.out" && grep -q "$want" "$TMP/bad.err" &&
        test "$(grep -c liballoc "$TMP/bad.err")" = 1; then
        ok "$name"
    else
        bad "$name"
        sed 's/^/     | /' "$TMP/bad.err" | tail -n 5
    fi
}
bad_input "unwritable profile path: a warning, exit status 0" \
    'cannot open the heap profile file .*/no/such/dir/p.raw: no such directory' \
    LA_PROFILE="$TMP/no/such/dir/p.raw"
bad_input "unwritable per-process path (%p): a warning at start, no sample needed" \
    'cannot open the heap profile file .*/no/such/dir/p\.[0-9]*\.raw: no such directory' \
    LA_PROFILE="$TMP/no/such/dir/p.%p.raw" LA_PROFILE_RATE=1024g
bad_input "profile path that is a directory: a warning, exit status 0" \
    'cannot open the heap profile file' LA_PROFILE="$TMP"
bad_input "LA_PROFILE_RATE=0: a warning" 'LA_PROFILE_RATE=0 ignored' \
    LA_PROFILE_RATE=0
bad_input "LA_PROFILE_RATE=99999g (absurd): a warning" 'LA_PROFILE_RATE=99999g ignored' \
    LA_PROFILE_RATE=99999g LA_PROFILE="$TMP/absurd.raw"
bad_input "LA_PROFILE_INTERVAL=soon: a warning" 'LA_PROFILE_INTERVAL=soon ignored' \
    LA_PROFILE_INTERVAL=soon
la_run_bad() {
    LA_PRELOAD_LIB=$SHIM "$LA_RUN" --profile= true 2>"$TMP/err"
    test $? = 2 && grep -q 'needs a file name' "$TMP/err"
}
check "la-run --profile= is a usage error" la_run_bad

# ---- 6. programs see no difference
unchanged() {
    mkdir -p "$TMP/many" && rm -f "$TMP/many"/*
    LA_PROFILE=$TMP/many/p.%p.raw LA_PROFILE_RATE=4k LA_PROFILE_INTERVAL=1 LD_PRELOAD=$SHIM \
        "$@" || return 1
    for f in "$TMP/many"/*; do $CHECK dumps "$f" 1 >/dev/null || { echo "bad dump $f"; return 1; }; done
    test -n "$(ls "$TMP/many")"
}
check "conformance under profiling (a sample per 4 KiB)" unchanged "$OUT/preload_conformance" shim
check "thread/fork churn under profiling (a sample per 4 KiB)" unchanged "$OUT/preload_churn" churn
every() {
    LA_PROFILE=$TMP/every.raw LA_PROFILE_RATE=1 LD_PRELOAD=$SHIM "$OUT/profile_every" \
        >"$TMP/every.out" || return 1
    $CHECK kept "$TMP/every.raw" "$(cat "$TMP/every.out")"
}
check "every allocation sampled: the malloc API unchanged, every free seen" every

echo "profile tests: $passed passed, $failed failed"
test "$failed" = 0
