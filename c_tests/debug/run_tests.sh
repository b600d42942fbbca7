#!/bin/sh
# run_tests.sh: the debug mode's end-to-end tests (run by `make debug-test`).
#
# Each seeded-bug program runs under `la-run --debug`; the test asserts on
# the exit status and on the report text (what went wrong, the functions
# involved, file:line). Clean programs -- our own, python3, git, ls -- must
# print no report and keep their exit status even with --leak-exitcode.
# la-run's own option handling is checked too.
#
# Environment: BUILD, CC (from mk/debug.mk), PYTHON.
set -u
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-python3}
LA_RUN=$BUILD/la-run
BIN=$BUILD/debug
TMP=$(mktemp -d /tmp/la_debug.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0

# run NAME WANT_STATUS CMD...: runs CMD (stdout/stderr into $TMP), checks
# the status; `has`/`lacks` then check stderr.
run() {
    name=$1 want=$2
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    got=$?
    if [ "$got" = "$want" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL $name: exit status $got, expected $want"
        sed 's/^/     | /' "$TMP/err" | head -n 30
    fi
}
has() {
    if grep -qF -- "$1" "$TMP/err"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL $name: report lacks: $1"
        sed 's/^/     | /' "$TMP/err" | head -n 30
    fi
}
lacks() {
    if grep -qF -- "$1" "$TMP/err"; then
        failed=$((failed + 1))
        echo "FAIL $name: unexpected: $1"
        sed 's/^/     | /' "$TMP/err" | head -n 30
    else
        passed=$((passed + 1))
    fi
}
ok() { echo "ok   $name"; }
# has_first FUNCTION: some trace of the report starts (frame #0) in FUNCTION.
has_first() {
    if grep -qE -- "#0 0x[0-9a-f]+ in $1 " "$TMP/err"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL $name: no trace starts in $1"
        sed 's/^/     | /' "$TMP/err" | head -n 30
    fi
}

ABRT=134 # 128 + SIGABRT

run leak 0 "$LA_RUN" --debug "$BIN/leak"
has "liballoc: leak report: detected memory leaks"
has "Direct leak of 96 byte(s) in 3 object(s) allocated from:"
has "in leaky_alloc"
has "leak.c:9"
has "SUMMARY: liballoc: 96 byte(s) leaked in 3 allocation(s)."
lacks "100 byte(s)"
ok
run leak-exitcode 23 "$LA_RUN" --debug --leak-exitcode 23 "$BIN/leak"
has "SUMMARY: liballoc: 96 byte(s) leaked"
ok
grep -q "leaked 2" "$TMP/out" && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL leak-exitcode: stdout lost"; }
printf '# ours\nleak:leaky_alloc\n' >"$TMP/supp"
run leak-suppressed 0 "$LA_RUN" --debug --leak-exitcode 23 --suppressions "$TMP/supp" "$BIN/leak"
lacks "liballoc:"
ok

# Stale stack: a dropped pointer's copies in dead frames (below main's
# caller, the exit path's own frames, the program's atexit handler) do not
# keep its block alive.
for mode in main atexit exit; do
    run stale-stack-$mode 0 "$LA_RUN" --debug "$BIN/stale_stack" $mode
    has "Direct leak of 777 byte(s) in 1 object(s) allocated from:"
    has "in lose_block"
    has "SUMMARY: liballoc: 777 byte(s) leaked in 1 allocation(s)."
    ok
done

# Dropped blocks are leaks whatever the allocator still holds: copies of
# their addresses in its own memory, free and quarantined blocks, the
# smp allocator's segments.
# (The calls may be unrolled into several sites: the total is checked.)
run leak-roots-overwrite 0 "$LA_RUN" --debug "$BIN/leak_roots" overwrite
has "in overwrite_three"
has "SUMMARY: liballoc: 3000 byte(s) leaked in 3 allocation(s)."
ok
for mode in calloc memalign freed; do
    run leak-roots-$mode 0 "$LA_RUN" --debug "$BIN/leak_roots" $mode
    has "in make_block"
    has "SUMMARY: liballoc: 3000 byte(s) leaked in 3 allocation(s)."
    ok
done
run leak-roots-big 0 "$LA_RUN" --debug "$BIN/leak_roots" big
has "Direct leak of 9437184 byte(s) in 3 object(s) allocated from:"
has "SUMMARY: liballoc: 9437184 byte(s) leaked in 3 allocation(s)."
ok

# A thread freeing inside its dl_iterate_phdr callback while the exit-time
# check runs: no deadlock (a hang ends in timeout's status 124), no report.
run exit-phdr-race 0 timeout 30 "$LA_RUN" --debug --leak-exitcode 23 "$BIN/exit_phdr_race"
lacks "liballoc:"
ok

# A leaked list: the head is the direct leak, its nodes indirect ones, and
# the SUMMARY counts both. A leaked cycle is indirect throughout.
run leak-list 0 "$LA_RUN" --debug "$BIN/leak_list"
has "Direct leak of 48 byte(s) in 1 object(s) allocated from:"
has "Indirect leak of 72 byte(s) in 3 object(s) allocated from:"
has "in make_head"
has "in make_node"
has "SUMMARY: liballoc: 120 byte(s) leaked in 4 allocation(s)."
lacks "Direct leak of 72"
lacks "Suppressions used:"
ok
run leak-cycle 0 "$LA_RUN" --debug "$BIN/leak_list" cycle
has "Indirect leak of 40 byte(s) in 1 object(s) allocated from:"
has "in make_cycle"
has "SUMMARY: liballoc: 200 byte(s) leaked in 6 allocation(s)."
lacks "Direct leak of 40"
ok
# A tree held through interior pointers: its root is direct, the other
# six nodes indirect; the tree a global holds is not leaked; a block that
# points only to itself is direct.
run leak-tree 0 "$LA_RUN" --debug "$BIN/leak_tree"
has "Direct leak of 64 byte(s) in 1 object(s)"
has "in self_loop"
has "SUMMARY: liballoc: 288 byte(s) leaked in 8 allocation(s)."
ok
# A suppressed head takes its nodes with it; the table credits the
# pattern with the head alone.
printf 'leak:make_head\nleak:never_matches\n' >"$TMP/supp-head"
run leak-list-suppressed 0 "$LA_RUN" --debug --leak-exitcode 23 --suppressions "$TMP/supp-head" "$BIN/leak_list"
lacks "leak of"
lacks "SUMMARY"
has "Suppressions used:"
has "  count      bytes template"
has "      1         48 make_head"
lacks "never_matches"
ok
# Suppressing the nodes alone leaves the head, as a direct leak.
printf 'leak:make_node\n' >"$TMP/supp-nodes"
run leak-list-nodes-suppressed 0 "$LA_RUN" --debug --suppressions "$TMP/supp-nodes" "$BIN/leak_list"
has "Direct leak of 48 byte(s) in 1 object(s)"
has "      3         72 make_node"
has "SUMMARY: liballoc: 48 byte(s) leaked in 1 allocation(s)."
ok
# LA_LOG_PATH (and --log-path): the report goes to <prefix>.<pid>, stderr
# stays empty; an unopenable prefix falls back to stderr with a warning.
rm -f "$TMP"/log.*
name=log-path
(umask 022 && LA_LOG_PATH="$TMP/log" "$LA_RUN" --debug "$BIN/leak_list" >"$TMP/out" 2>"$TMP/err")
st=$?
logs=$(ls "$TMP"/log.* 2>/dev/null | wc -l)
if [ "$st" = 0 ] && [ ! -s "$TMP/err" ] && [ "$logs" = 1 ] &&
    grep -q "SUMMARY: liballoc: 120 byte(s) leaked in 4 allocation(s)." "$TMP"/log.* &&
    ls "$TMP"/log.* | grep -qE '/log\.[0-9]+$' &&
    [ "$(stat -c %a "$TMP"/log.*)" = 644 ]; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "FAIL log-path: status $st, $logs log file(s), stderr:"
    sed 's/^/     | /' "$TMP/err" | head -n 10
fi
ok
rm -f "$TMP"/log.*
run log-path-option 0 "$LA_RUN" --debug --log-path "$TMP/log" "$BIN/leak_list"
lacks "liballoc"
grep -q "Direct leak of 48 byte(s)" "$TMP"/log.* 2>/dev/null && passed=$((passed + 1)) ||
    { failed=$((failed + 1)); echo "FAIL log-path-option: no report in the log file"; }
ok
rm -f "$TMP"/log.*
run log-path-clean 0 env LA_LOG_PATH="$TMP/log" "$LA_RUN" --debug "$BIN/clean"
lacks "liballoc"
if ls "$TMP"/log.* >/dev/null 2>&1; then
    failed=$((failed + 1))
    echo "FAIL log-path-clean: a clean run left a log file"
else
    passed=$((passed + 1))
fi
ok
run log-path-unopenable 0 env LA_LOG_PATH=/nonexistent/dir/log "$LA_RUN" --debug "$BIN/leak_list"
has "liballoc: warning: cannot open LA_LOG_PATH file /nonexistent/dir/log."
has "SUMMARY: liballoc: 120 byte(s) leaked in 4 allocation(s)."
ok
run log-path-no-debug 2 "$LA_RUN" --log-path "$TMP/log" "$BIN/clean"
has "need --debug"
ok

run double-free $ABRT "$LA_RUN" --debug "$BIN/double_free"
has "liballoc: error: double free of 0x"
has "freed again by thread"
has "in second_release"
has "first freed by thread"
has "in first_release"
has "in make_buffer"
has "double_free.c:"
ok

run interior-free $ABRT "$LA_RUN" --debug "$BIN/interior_free"
has "liballoc: error: free of interior pointer"
has "8 byte(s) into a live block of 64 byte(s)"
has "in release_middle"
ok

run wrong-size-api $ABRT "$LA_RUN" --debug "$BIN/wrong_size"
has "liballoc: error: free with wrong size: block"
has "has 40 byte(s), free was given 36"
has "in release_short"
has "in main"
ok

run overflow $ABRT "$LA_RUN" --debug "$BIN/overflow"
has "liballoc: error: heap buffer overflow: byte 0 past the end of the 10-byte block"
has "in main"
has "overflow.c:"
ok

# A zero-size block ends at a guard page: a write to its byte 0 faults.
run zero-size-overflow $ABRT "$LA_RUN" --debug "$BIN/zero_size"
has "liballoc: error: heap buffer overflow (guard page): access at 0x"
has "is 0 byte(s) past the end of the 0-byte block"
has "in poke"
has "zero_size.c:"
ok
# ... and so does a read of it, in a block never freed.
run zero-size-read $ABRT "$LA_RUN" --debug "$BIN/zero_size_read"
has "liballoc: error: heap buffer overflow (guard page): access at 0x"
has "is 0 byte(s) past the end of the 0-byte block"
has "in peek"
has "zero_size_read.c:"
ok

run write-after-free $ABRT "$LA_RUN" --debug "$BIN/write_after_free"
has "liballoc: error: write after free: byte 5 of the freed 64-byte block"
has "freed by thread"
has "write_after_free.c:"
ok

# Tuning variables: no fill means no write-after-free check; one frame per
# trace; a bad value is named and ignored.
run tuned-no-fill 0 env LA_DEBUG_FILL=0 "$LA_RUN" --debug "$BIN/write_after_free"
lacks "write after free"
ok
run tuned-one-frame 0 env LA_DEBUG_FRAMES=1 "$LA_RUN" --debug "$BIN/leak"
has "#0 0x"
has "in leaky_alloc"
lacks "#1 0x"
ok
run tuned-bad-value 0 env LA_DEBUG_QUARANTINE=lots LA_DEBUG_FILL=all "$LA_RUN" --debug "$BIN/clean"
has "liballoc: warning: LA_DEBUG_QUARANTINE=lots ignored"
lacks "LA_DEBUG_FILL"
ok
# A trace through code without frame pointers (a hand-written frame that
# keeps a non-frame in rbp): the frame-pointer walk stops there; the
# unwind tables take it on to main (by default, as the walk found fewer
# than three frames), through the right one of two callers
# that reach the same stop (the unwinder's frames are remembered per stop
# and checked against the stack before reuse).
if [ "$(uname -m)" = x86_64 ]; then
    run unwind-fp 0 env LA_DEBUG_UNWIND=fp "$LA_RUN" --debug "$BIN/leak_nofp"
    has "Direct leak of 96 byte(s) in 2 object(s) allocated from:"
    has_first callback
    has "in through_nofp"
    lacks "in caller_"
    lacks "in main"
    ok
    # The default (auto) goes on too: the walk found two frames.
    for unwind in tables auto; do
        run unwind-$unwind 0 env LA_DEBUG_UNWIND=$unwind "$LA_RUN" --debug "$BIN/leak_nofp"
        has "Direct leak of 48 byte(s) in 1 object(s) allocated from:"
        has_first callback
        has "#1 0x"
        has "in through_nofp"
        has "#2 0x"
        has "in caller_a"
        has "in caller_b"
        has "in main"
        has "SUMMARY: liballoc: 96 byte(s) leaked in 2 allocation(s)."
        ok
    done
    run unwind-default 0 "$LA_RUN" --debug "$BIN/leak_nofp"
    has "in caller_a"
    ok
    run unwind-bad-value 0 env LA_DEBUG_UNWIND=dwarf "$LA_RUN" --debug "$BIN/clean"
    has "liballoc: warning: LA_DEBUG_UNWIND=dwarf ignored"
    ok
fi

run foreign-free $ABRT "$LA_RUN" --debug "$BIN/foreign_free"
has "liballoc: error: free of foreign pointer"
has "in release_static"
ok

run realloc-freed $ABRT "$LA_RUN" --debug "$BIN/realloc_freed"
has "liballoc: error: realloc of freed block"
has "in grow"
ok

run guard-overflow $ABRT "$LA_RUN" --debug "$BIN/guard_overflow"
has "liballoc: error: heap buffer overflow (guard page): access at 0x"
has "is 0 byte(s) past the end of the 200000-byte block"
has "in read_past"
has "guard_overflow.c:"
ok

run guard-use-after-free $ABRT "$LA_RUN" --debug "$BIN/guard_use_after_free"
has "liballoc: error: use after free: access at 0x"
has "in the freed 300000-byte block"
has "in scribble"
has "freed by thread"
ok

# A large block (its mapping alone counts against the quarantine) is still
# explained after a thousand small blocks came and went.
run guard-use-after-free-later $ABRT "$LA_RUN" --debug "$BIN/guard_use_after_free" 4194304 1000
has "liballoc: error: use after free: access at 0x"
has "in the freed 4194304-byte block"
has "in scribble"
ok

# Traces start at the user's call, whatever the entry point: allocation
# (each leak of entry_points comes from a function of its own) and free.
run entry-points 0 "$LA_RUN" --debug "$BIN/entry_points"
for f in via_malloc via_calloc via_realloc_null via_realloc_grow via_memalign \
    via_aligned_alloc via_posix_memalign via_valloc; do
    has_first "$f"
done
has "8 allocation(s)"
ok
run first-frames $ABRT "$LA_RUN" --debug "$BIN/double_free"
has_first second_release
has_first first_release
has_first make_buffer
ok

# Clean programs: no report, exit status unchanged even with --leak-exitcode.
run clean 0 "$LA_RUN" --debug --leak-exitcode 23 "$BIN/clean"
lacks "liballoc:"
has "stderr works too"
ok
PY=$("$PYTHON" -c 'import sys; print(sys.executable)')
name=python3
run python3 0 "$LA_RUN" --debug --leak-exitcode 23 "$PY" -c 'print(1)'
lacks "liballoc:"
ok
run python3-json 0 "$LA_RUN" --debug --leak-exitcode 23 "$PY" -c 'import json; print(json.dumps({"a": [1, 2, 3]}))'
lacks "liballoc:"
ok
if command -v git >/dev/null 2>&1; then
    run git 0 "$LA_RUN" --debug --leak-exitcode 23 git --version
    lacks "liballoc:"
    ok
fi
run ls 0 "$LA_RUN" --debug --leak-exitcode 23 ls -l /
lacks "liballoc:"
ok
# The same with traces through the unwind tables (Debian's python3, git
# and ls are built without frame pointers: every trace goes through them).
run python3-json-tables 0 env LA_DEBUG_UNWIND=tables "$LA_RUN" --debug --leak-exitcode 23 "$PY" -c 'import json, threading; t = threading.Thread(target=lambda: json.dumps([{"a": i} for i in range(1000)])); t.start(); t.join(); print(1)'
lacks "liballoc:"
ok
run ls-tables 0 env LA_DEBUG_UNWIND=tables "$LA_RUN" --debug --leak-exitcode 23 ls -lR /usr/include/linux
lacks "liballoc:"
ok
# mallinfo/mallinfo2: quarantined (freed, held back) bytes are free.
run mallinfo-quarantine 0 "$LA_RUN" --debug "$BIN/mallinfo_quarantine"
lacks "liballoc:"
lacks "mallinfo"
ok

# Little address space: the debug mode's tables are reserved in steps
# sized by RLIMIT_AS, so it runs under `ulimit -v`.
for kib in 1000000 262144; do
    run "ulimit-v-$kib" 0 sh -c 'ulimit -v "$1" && exec "$2" --debug "$3"' sh "$kib" "$LA_RUN" "$BIN/small_heap"
    lacks "liballoc:"
    lacks "failed"
    ok
done
# Threads, cross-thread frees, fork and thread-exit destructors (the shim's
# churn test), and C++ new/delete with the STL, all clean.
CC=${CC:-cc}
if $CC -std=c11 -O2 -g -Ic_tests -o "$BIN/preload_churn" c_tests/preload_churn.c -lpthread 2>"$TMP/err"; then
    run threads-fork 0 "$LA_RUN" --debug --leak-exitcode 23 "$BIN/preload_churn" churn
    lacks "liballoc:"
    ok
fi
if command -v g++ >/dev/null 2>&1 &&
    g++ -std=c++17 -O2 -g -o "$BIN/preload_cxx" c_tests/preload_cxx.cpp 2>"$TMP/err"; then
    run cxx 0 "$LA_RUN" --debug --leak-exitcode 23 "$BIN/preload_cxx"
    lacks "liballoc:"
    ok
fi
# C++ sized and aligned operator delete: the size and alignment given must
# be the block's.
if command -v g++ >/dev/null 2>&1 &&
    g++ -std=c++17 -O1 -g -fno-omit-frame-pointer -o "$BIN/cxx_sized_delete" c_tests/cxx_sized_delete.cpp 2>"$TMP/err"; then
    run cxx-sized-delete-ok 0 "$LA_RUN" --debug --leak-exitcode 23 "$BIN/cxx_sized_delete" ok
    lacks "liballoc:"
    ok
    run cxx-sized-delete-size $ABRT "$LA_RUN" --debug "$BIN/cxx_sized_delete" size
    has "liballoc: error: operator delete with wrong size: block 0x"
    has "has 40 byte(s), operator delete was given 36"
    has "in release_sized"
    ok
    run cxx-sized-delete-align $ABRT "$LA_RUN" --debug "$BIN/cxx_sized_delete" align
    has "liballoc: error: operator delete with wrong alignment: block 0x"
    has "has alignment 64, operator delete was given 32"
    has "in release_aligned"
    ok
    run cxx-aligned-delete-align $ABRT "$LA_RUN" --debug "$BIN/cxx_sized_delete" align-only
    has "has alignment 64, operator delete was given 32"
    has "in release_aligned_only"
    ok
fi

# Differential check against LeakSanitizer: the same leak programs built
# with -fsanitize=leak and plainly (run under la-run --debug) must agree on
# whether they leak and on the direct and indirect byte and object totals.
# totals FILE: "direct-bytes direct-objects indirect-bytes indirect-objects".
totals() {
    awk '/^(Direct|Indirect) leak of [0-9]+ byte\(s\) in [0-9]+ object/ {
            k = ($1 == "Direct") ? 1 : 3; t[k] += $4; t[k + 1] += $7 }
         END { printf "%d %d %d %d\n", t[1], t[2], t[3], t[4] }' "$1"
}
# sites FILE: the function of each leak record's first frame outside the
# sanitizer runtime (where the program allocated), sorted, one line.
sites() {
    awk '/^(Direct|Indirect) leak of / { want = 1; next }
         want && /^ +#[0-9]+ 0x/ {
             if ($0 ~ /sanitizer|lsan_|asan_/) next
             print $4; want = 0 }' "$1" | sort | tr '\n' ' '
}
LSAN_DIR=$BIN/lsan
mkdir -p "$LSAN_DIR"
if $CC -fsanitize=leak -g -O1 -fno-omit-frame-pointer -o "$LSAN_DIR/probe" \
    c_tests/debug/clean.c >/dev/null 2>&1 &&
    LSAN_OPTIONS=exitcode=0 "$LSAN_DIR/probe" >/dev/null 2>&1; then
    # The C++ program is built here, both ways (make builds only C).
    CXX_OK=0
    g++ -std=c++17 -g -O1 -fno-omit-frame-pointer -o "$BIN/leak_new_array" \
        c_tests/debug/leak_new_array.cpp 2>"$TMP/err" &&
        g++ -fsanitize=leak -std=c++17 -g -O1 -fno-omit-frame-pointer \
            -o "$LSAN_DIR/leak_new_array" c_tests/debug/leak_new_array.cpp 2>"$TMP/err" &&
        CXX_OK=1
    [ $CXX_OK = 1 ] || echo "skip lsan-diff leak_new_array: no g++"
    if [ $CXX_OK = 1 ]; then
        # The leak's trace starts where new[] was called, in main, as
        # LeakSanitizer's does after its operator new[] frame: the walk
        # goes through the shim's operator new (built with frame pointers).
        run cxx-leak-site 0 "$LA_RUN" --debug "$BIN/leak_new_array" dropped
        has_first main
        has "leak_new_array.cpp:25"
        ok
    fi
    built=" "
    for prog in "leak_list" "leak_list cycle" "leak_tree" "leak" "clean" \
        "leak_places global" "leak_places tls" "leak_places thread" \
        "leak_places register" "leak_places interior" "leak_places freed" \
        "leak_places recent" "leak_places realloc" "leak_places memalign" \
        "leak_places child" "leak_places mmap" \
        "leak_new_array kept" "leak_new_array dropped" \
        "leak_new_array cookie" "leak_new_array cookie-dropped"; do
        set -- $prog
        name="lsan-diff $prog"
        if [ "$1" = leak_new_array ]; then
            [ $CXX_OK = 1 ] || continue
        elif [ "${built#* $1 }" = "$built" ]; then
            if ! $CC -fsanitize=leak -std=c11 -g -O1 -fno-omit-frame-pointer -Iinclude \
                -o "$LSAN_DIR/$1" "c_tests/debug/$1.c" -lpthread 2>"$TMP/err"; then
                failed=$((failed + 1))
                echo "FAIL $name: cannot build with -fsanitize=leak"
                continue
            fi
            built="$built$1 "
        fi
        LSAN_OPTIONS=exitcode=0 "$LSAN_DIR/$@" >/dev/null 2>"$TMP/lsan"
        "$LA_RUN" --debug "$BIN/$@" >/dev/null 2>"$TMP/ours"
        want=$(totals "$TMP/lsan")
        got=$(totals "$TMP/ours")
        if [ "$prog" = "leak_places mmap" ]; then
            # A deliberate difference: LeakSanitizer scans no memory that
            # the program mapped itself, so it reports the block held there;
            # la-run --debug scans every writable anonymous mapping as a
            # root, because programs keep live pointers in their own arenas
            # (Python's object arenas, for one) and would otherwise be
            # flooded with false leaks.
            if [ "$want" = "1000 1 0 0" ] && [ "$got" = "0 0 0 0" ]; then
                passed=$((passed + 1))
                echo "ok   $name (differs on purpose: LeakSanitizer $want, la-run --debug $got)"
            else
                failed=$((failed + 1))
                echo "FAIL $name: LeakSanitizer says $want (want 1000 1 0 0), la-run --debug $got (want 0 0 0 0)"
                sed 's/^/     | /' "$TMP/ours" | head -n 20
            fi
            continue
        fi
        # The same totals, and the same allocation sites.
        want_sites=$(sites "$TMP/lsan")
        got_sites=$(sites "$TMP/ours")
        if [ "$want" = "$got" ] && [ "$want_sites" = "$got_sites" ]; then
            passed=$((passed + 1))
            echo "ok   $name ($got; sites: ${got_sites:-none})"
        else
            failed=$((failed + 1))
            echo "FAIL $name: LeakSanitizer says $want at ${want_sites:-no site}," \
                "la-run --debug $got at ${got_sites:-no site}"
            sed 's/^/     | /' "$TMP/ours" | head -n 20
        fi
    done
else
    echo "skip lsan-diff: cannot build or run with -fsanitize=leak here"
fi

# la-run itself.
run la-run-help 0 "$LA_RUN" --help
grep -q -- "--leak-exitcode N" "$TMP/out" && grep -q -- "--fail-at N" "$TMP/out" && grep -q -- "--stats=json" "$TMP/out" &&
    passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL la-run-help: option missing"; }
ok
run la-run-bad-option 2 "$LA_RUN" --frobnicate ls
has "la-run: unknown option '--frobnicate'"
ok
run la-run-bad-number 2 "$LA_RUN" --fail-at zero ls
has "--fail-at needs an allocation number"
ok
run la-run-no-program 2 "$LA_RUN" --debug
has "no program to run"
ok
run la-run-missing-program 127 "$LA_RUN" /nonexistent/program
has "la-run: cannot run '/nonexistent/program'"
ok
run la-run-status 3 "$LA_RUN" sh -c 'exit 3'
ok
run la-run-fail-at 1 "$LA_RUN" --fail-at 1 "$PY" -c 'print(1)'
has "memory allocation failed"
ok
run la-run-stats 0 "$LA_RUN" --stats=json "$BIN/clean"
has '"liballoc_stats"'
ok

echo "debug-test: $passed passed, $failed failed"
[ "$failed" = 0 ]
