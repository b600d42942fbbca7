#!/bin/sh
# run_tests.sh: the tests of liballoc_preload.so (run by `make preload-test`).
#
# 1. symbols: liballoc.so exports no malloc; the shim exports the whole
#    family and, of the la_* API, la_profile_dump alone; a program linked
#    with liballoc.so alone still runs on glibc.
# 2. preload_conformance under the shim and under glibc.
# 3. preload_misuse: every misuse aborts with "liballoc: fatal:" and says
#    "double free" or "invalid pointer" as it must (glibc's behaviour
#    printed alongside). Expected to fail while the smp allocator
#    is the stand-in (its check() cannot classify pointers).
# 4. preload_churn (threads, fork, thread-exit frees) both ways;
#    preload_introspect (malloc_stats under a pending cancellation,
#    mallinfo/mallinfo2 of a huge block) both ways; LA_FAIL_AT;
#    LA_STATS=1 / json / LA_VERBOSE / unknown LA_* warnings; the smp stress
#    test (c_tests/stress.c built as plain malloc code) when it exists.
# 5. Real programs, output compared with a run without the shim: C++ STL,
#    python3 (json + sqlite3), git, sqlite3, gcc, redis-server driven by
#    redis-benchmark.
# 6. Address space: a trivial program's VmSize under the shim is close to
#    mimalloc's (glibc's + 40 MiB without libmimalloc); under
#    `ulimit -v 131072`, ls, python3 and 4 threads allocating small and
#    1-4 MiB blocks run. The shim's resident code in a threaded malloc/free
#    program stays small (src/preload/hot.ld groups the code it runs).
#
# Environment: CC, CWARN, BUILD, PYTHON (from mk/preload.mk).
set -u
CC=${CC:-cc}
CWARN=${CWARN:--std=c11 -Wall -Wextra -Wpedantic -Werror}
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-python3}
ROOT=$(pwd)
SHIM=$ROOT/$BUILD/liballoc_preload.so
OUT=$ROOT/$BUILD/preload
TMP=$(mktemp -d /tmp/la_preload.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"

passed=0
failed=0
xfailed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
xfail() { xfailed=$((xfailed + 1)); echo "XFAIL $*"; }
# check NAME CMD...: runs CMD, ok when it succeeds.
check() {
    name=$1
    shift
    if "$@" >"$TMP/log" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/     | /' "$TMP/log" | tail -n 20; fi
}
shim() { LD_PRELOAD=$SHIM "$@"; }

install_missing() {
    need=""
    command -v sqlite3 >/dev/null 2>&1 || need="$need sqlite3"
    command -v redis-server >/dev/null 2>&1 || need="$need redis-server"
    command -v redis-benchmark >/dev/null 2>&1 || need="$need redis-tools"
    command -v g++ >/dev/null 2>&1 || need="$need g++"
    command -v git >/dev/null 2>&1 || need="$need git"
    if [ -n "$need" ]; then
        echo "installing:$need"
        SUDO=""
        [ "$(id -u)" = 0 ] || SUDO=sudo
        $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y $need >"$TMP/apt.log" 2>&1 ||
            { $SUDO apt-get -o DPkg::Lock::Timeout=600 update >/dev/null 2>&1 &&
              $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y $need >"$TMP/apt.log" 2>&1; } ||
            tail -n 5 "$TMP/apt.log"
    fi
}
install_missing

# ---- build the test programs
build() {
    "$@" >"$TMP/build.log" 2>&1 || { echo "build failed: $*"; cat "$TMP/build.log"; exit 1; }
}
build $CC $CWARN -O2 -g -Ic_tests -o "$OUT/preload_conformance" c_tests/preload_conformance.c
build $CC $CWARN -O2 -g -Ic_tests -o "$OUT/preload_conformance_linked" c_tests/preload_conformance.c \
    -L"$BUILD" -lalloc -Wl,-rpath,"$ROOT/$BUILD" -Wl,--no-as-needed
build $CC $CWARN -O2 -g -Ic_tests -o "$OUT/preload_misuse" c_tests/preload_misuse.c
build $CC $CWARN -O2 -g -Ic_tests -o "$OUT/preload_churn" c_tests/preload_churn.c -lpthread
build $CC $CWARN -O2 -g -Ic_tests -o "$OUT/preload_introspect" c_tests/preload_introspect.c -lpthread
build $CC $CWARN -O2 -g -o "$OUT/preload_vm" c_tests/preload_vm.c -lpthread
build g++ -std=c++17 -Wall -Wextra -Wpedantic -Werror -O2 -g -o "$OUT/preload_cxx" c_tests/preload_cxx.cpp
build g++ -std=c++17 -Wall -Wextra -Wpedantic -Werror -O2 -g -o "$OUT/cxx_sized_delete" c_tests/cxx_sized_delete.cpp

# ---- 1. symbols
check "liballoc.so exports no malloc-family symbol" \
    sh -c "! nm -D --defined-only '$BUILD/liballoc.so' | awk '{print \$3}' | grep -Eq '^(malloc|free|calloc|realloc|posix_memalign|aligned_alloc|memalign|_Znwm|_ZdlPv)(@|\$)'"
missing=""
for s in malloc free calloc realloc reallocarray posix_memalign aligned_alloc memalign valloc \
    pvalloc malloc_usable_size cfree free_sized free_aligned_sized __libc_malloc __libc_free \
    __libc_calloc __libc_realloc __libc_memalign __libc_valloc __libc_pvalloc mallinfo mallinfo2 \
    malloc_stats malloc_trim malloc_info _Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t \
    _ZnwmSt11align_val_t _ZnamSt11align_val_t _ZnwmSt11align_val_tRKSt9nothrow_t \
    _ZnamSt11align_val_tRKSt9nothrow_t _ZdlPv _ZdaPv _ZdlPvm _ZdaPvm _ZdlPvRKSt9nothrow_t \
    _ZdaPvRKSt9nothrow_t _ZdlPvSt11align_val_t _ZdaPvSt11align_val_t _ZdlPvmSt11align_val_t \
    _ZdaPvmSt11align_val_t _ZdlPvSt11align_val_tRKSt9nothrow_t _ZdaPvSt11align_val_tRKSt9nothrow_t; do
    nm -D --defined-only "$SHIM" | awk '{print $3}' | grep -qx "$s" || missing="$missing $s"
done
check "liballoc_preload.so exports the malloc family and operators${missing:+ (missing:$missing)}" test -z "$missing"
check "liballoc_preload.so exports nothing else (of la_*, only la_profile_dump)" \
    sh -c "! nm -D --defined-only '$SHIM' | awk '{print \$3}' | grep '^la_' | grep -qvx la_profile_dump"
check "a program linked with liballoc.so alone runs on glibc's malloc" "$OUT/preload_conformance_linked" glibc

# ---- 2. conformance
check "conformance on glibc" "$OUT/preload_conformance" glibc
check "conformance on liballoc_preload.so" shim "$OUT/preload_conformance" shim

# ---- 3. misuse
"$OUT/preload_misuse" glibc >"$TMP/misuse_glibc" 2>&1
echo "     glibc baseline:"
sed 's/^/     | /' "$TMP/misuse_glibc" | grep -v 'passed,'
if shim "$OUT/preload_misuse" shim >"$TMP/misuse" 2>&1; then
    ok "misuse (double/interior/stack/global/wild/misaligned/unallocated) aborts with liballoc: fatal:"
else
    bad "misuse detection"
    sed 's/^/     | /' "$TMP/misuse"
fi

# C++ sized operator delete: a size larger than the block is fatal; right
# sizes and alignments run clean.
check "sized operator delete with the right sizes" shim "$OUT/cxx_sized_delete" ok
shim "$OUT/cxx_sized_delete" big >"$TMP/log" 2>&1
rc=$?
if [ "$rc" = 134 ] && grep -q "liballoc: fatal: invalid size (4096 bytes given, the block holds at most [0-9]*): operator delete(0x" "$TMP/log"; then
    ok "sized operator delete larger than the block aborts with liballoc: fatal:"
else
    bad "sized operator delete larger than the block (exit status $rc)"
    sed 's/^/     | /' "$TMP/log" | tail -n 20
fi

# ---- 4. churn, introspection, options, stats
for t in cancel mallinfo; do
    check "introspection ($t) on glibc" "$OUT/preload_introspect" $t
    check "introspection ($t) on liballoc_preload.so" shim "$OUT/preload_introspect" $t
done
check "thread/fork churn on glibc" "$OUT/preload_churn" churn
check "thread/fork churn on liballoc_preload.so" shim "$OUT/preload_churn" churn
check "LA_FAIL_AT=500: exactly one failed allocation with ENOMEM" env LA_FAIL_AT=500 LD_PRELOAD="$SHIM" "$OUT/preload_churn" failat
if [ -f c_tests/stress.c ]; then
    if $CC $CWARN -O2 -g -DSTRESS_MALLOC -Ic_tests -Iinclude -o "$OUT/stress_malloc" c_tests/stress.c -lpthread >"$TMP/build.log" 2>&1; then
        check "smp stress test (plain malloc build, 4 s, 2 phases) under the shim" timeout 120 env LD_PRELOAD="$SHIM" "$OUT/stress_malloc" 4 2
    else
        bad "smp stress test builds with -DSTRESS_MALLOC"
        tail -n 5 "$TMP/build.log"
    fi
else
    echo "     (c_tests/stress.c not present yet: covered by preload_churn)"
fi

LA_STATS=json LD_PRELOAD=$SHIM "$OUT/preload_churn" count 5000 2>"$TMP/json"
check "LA_STATS=json prints one parsable JSON object" "$PYTHON" c_tests/preload/stats_check.py "$TMP/json" 5000
LA_STATS=1 LD_PRELOAD=$SHIM "$OUT/preload_churn" count 5000 2>"$TMP/table"
check "LA_STATS=1 prints the table" sh -c "grep -q '^liballoc statistics (pid' '$TMP/table' &&
    grep -q '^  block size' '$TMP/table' && grep -Eq '^ +total +[0-9]+' '$TMP/table' &&
    grep -q 'heap: committed' '$TMP/table' &&
    grep -Eq 'system calls: mmap [1-9][0-9]*, munmap [0-9]+, madvise [0-9]+, mremap [0-9]+, purged ' '$TMP/table' &&
    grep -q 'process: rss' '$TMP/table' && grep -Eq 'calls: alloc [0-9]{4,}, free [0-9]{4,}' '$TMP/table'"
LA_VERBOSE=1 LD_PRELOAD=$SHIM /bin/true 2>"$TMP/verbose"
check "LA_VERBOSE=1 prints one line confirming the shim" sh -c "test \$(grep -c 'liballoc: preload shim active' '$TMP/verbose') = 1"
LA_BOGUS=1 LA_DEBUG=1 LA_LEAK_EXITCODE=3 LA_SUPPRESSIONS=x LD_PRELOAD=$SHIM /bin/true 2>"$TMP/unknown"
check "unknown LA_* variables get one warning; reserved names none" sh -c "
    test \$(wc -l <'$TMP/unknown') = 1 && grep -q 'warning: unknown environment variable LA_BOGUS' '$TMP/unknown'"
LD_PRELOAD=$SHIM /bin/true 2>"$TMP/quiet"
check "no output without options" test ! -s "$TMP/quiet"

# ---- 5. real programs (output must equal a run without the shim)
same() {
    # same NAME CMD...: runs CMD without and with the shim, compares stdout.
    name=$1
    shift
    "$@" >"$TMP/plain.out" 2>"$TMP/plain.err"
    rc1=$?
    LD_PRELOAD=$SHIM "$@" >"$TMP/shim.out" 2>"$TMP/shim.err"
    rc2=$?
    if [ $rc1 = 0 ] && [ $rc2 = 0 ] && cmp -s "$TMP/plain.out" "$TMP/shim.out"; then
        ok "$name (identical output, $(wc -c <"$TMP/shim.out") bytes)"
    else
        bad "$name (exit $rc1 / $rc2)"
        diff "$TMP/plain.out" "$TMP/shim.out" | head -n 10 | sed 's/^/     | /'
        tail -n 10 "$TMP/shim.err" | sed 's/^/     | /'
    fi
}

same "C++ STL, new/delete[], aligned new, bad_alloc" "$OUT/preload_cxx"
same "python3 json + sqlite3 workload" "$PYTHON" c_tests/preload/workload.py 20000

cat >"$TMP/sql" <<'EOF'
create table t(id integer primary key, v text, n real);
with recursive c(x) as (select 1 union all select x + 1 from c where x < 50000)
  insert into t select x, printf('value-%08d', x * 7919 % 100003), x / 7.0 from c;
create index t_v on t(v);
select count(*), sum(n), min(v), max(v) from t;
select v from t where id % 9973 = 0 order by v;
select substr(v, 1, 8), count(*) from t group by 1 order by 2 desc limit 3;
EOF
same "sqlite3 CLI" sh -c "sqlite3 :memory: <'$TMP/sql'"

git_run() {
    d=$1
    rm -rf "$d"
    mkdir -p "$d"
    cd "$d" || return 1
    export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t
    export GIT_COMMITTER_EMAIL=t@example.com GIT_CONFIG_NOSYSTEM=1 HOME="$d"
    export GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' GIT_COMMITTER_DATE='2024-01-01T00:00:00Z'
    git init -q -b main . && i=0 &&
    while [ $i -lt 20 ]; do
        seq $i 1000 >"f$((i % 7)).txt" && git add -A && git commit -q -m "commit $i" || return 1
        i=$((i + 1))
    done
    git log --format='%H %s' && git gc -q && git count-objects -v | grep -v size && git fsck --no-progress 2>&1
}
( git_run "$TMP/git1" ) >"$TMP/git1.out" 2>&1
rc1=$?
( LD_PRELOAD=$SHIM; export LD_PRELOAD; git_run "$TMP/git2" ) >"$TMP/git2.out" 2>&1
rc2=$?
if [ $rc1 = 0 ] && [ $rc2 = 0 ] && cmp -s "$TMP/git1.out" "$TMP/git2.out" && [ -s "$TMP/git2.out" ]; then
    ok "git init/commit/log/gc/fsck (identical output, $(wc -l <"$TMP/git2.out") lines)"
else
    bad "git (exit $rc1 / $rc2)"
    diff "$TMP/git1.out" "$TMP/git2.out" | head -n 10 | sed 's/^/     | /'
fi

same "gcc compiling a C file (assembly output)" gcc -O2 -S -o - c_tests/preload_misuse.c -Ic_tests
same "g++ compiling the C++ test (assembly output)" g++ -std=c++17 -O1 -S -o - c_tests/preload_cxx.cpp

redis_run() {
    port=$1
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        --logfile "$TMP/redis.$port.log" &
    pid=$!
    i=0
    until redis-cli -p "$port" ping >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -gt 100 ] && { kill $pid; return 1; }
        sleep 0.1
    done
    LD_PRELOAD= redis-benchmark -h 127.0.0.1 -p "$port" -n 10000 -c 10 -q -t set,get,lpush,lpop,incr,hset,sadd >"$TMP/bench.$port" 2>&1
    brc=$?
    LD_PRELOAD= redis-cli -p "$port" dbsize
    LD_PRELOAD= redis-cli -p "$port" get key:__rand_int__
    LD_PRELOAD= redis-cli -p "$port" llen mylist
    LD_PRELOAD= redis-cli -p "$port" debug digest
    LD_PRELOAD= redis-cli -p "$port" shutdown nosave >/dev/null 2>&1
    wait $pid
    [ $brc = 0 ] && [ "$(grep -c 'requests per second' "$TMP/bench.$port")" -ge 7 ]
}
( redis_run 16379 ) >"$TMP/redis1.out" 2>&1
rc1=$?
( LD_PRELOAD=$SHIM; export LD_PRELOAD; redis_run 16380 ) >"$TMP/redis2.out" 2>&1
rc2=$?
if [ $rc1 = 0 ] && [ $rc2 = 0 ] && cmp -s "$TMP/redis1.out" "$TMP/redis2.out"; then
    ok "redis-server driven by redis-benchmark (10000 requests x 7 commands, same final data set)"
    tr '\r' '\n' <"$TMP/bench.16380" | grep 'requests per second' | sed 's/^/     | /'
else
    bad "redis (exit $rc1 / $rc2)"
    diff "$TMP/redis1.out" "$TMP/redis2.out" | head -n 10 | sed 's/^/     | /'
    tail -n 5 "$TMP/redis.16380.log" 2>/dev/null | sed 's/^/     | /'
fi

# ---- 6. address space
MIMALLOC=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2
vm_shim=$(LD_PRELOAD=$SHIM "$OUT/preload_vm" vmsize)
vm_glibc=$("$OUT/preload_vm" vmsize)
if [ -f "$MIMALLOC" ]; then
    vm_mi=$(LD_PRELOAD=$MIMALLOC "$OUT/preload_vm" vmsize)
    vm_ref="mimalloc ${vm_mi} kB"
    vm_max=$((vm_mi + 4096))
else
    vm_ref="glibc ${vm_glibc} kB, no libmimalloc"
    vm_max=$((vm_glibc + 40960))
fi
check "VmSize at start under the shim: ${vm_shim:-?} kB <= $vm_max kB ($vm_ref; glibc $vm_glibc kB)" \
    test "${vm_shim:-999999999}" -le "$vm_max"
# Left in link order the code such a program runs lies in nearly every
# 64 KiB fault-around window of the text, and about 420 kB of it is
# resident; grouped, 80 to 140 kB (as the windows fall).
TEXT_MAX=224
text_kb=$(LD_PRELOAD=$SHIM "$OUT/preload_vm" textrss liballoc_preload.so)
check "resident code of the shim, 4 threads allocating and freeing: ${text_kb:-?} kB <= $TEXT_MAX kB" \
    test "${text_kb:-999999}" -le "$TEXT_MAX"
# The tables the allocation paths read are linked with the relocated data
# (src/preload/hot.ld): left in .rodata, one read brought 64 kB of the
# shim's constant data in by fault-around.
rodata_kb=$(LD_PRELOAD=$SHIM "$OUT/preload_vm" rodatarss liballoc_preload.so)
check "resident constant data of the shim, 4 threads allocating and freeing: ${rodata_kb:-?} kB = 0 kB" \
    test "${rodata_kb:-999999}" -eq 0
# The unwinder is linked into the shim (mk/preload.mk): with libgcc_s as a
# dependency every process loaded it, about 80 kB resident.
check "a process under the shim maps no libgcc_s" \
    sh -c "LD_PRELOAD='$SHIM' cat /proc/self/maps >'$TMP/maps' && grep -q liballoc_preload '$TMP/maps' && ! grep -q libgcc_s '$TMP/maps'"
VM_LIMIT=131072
check "ulimit -v $VM_LIMIT: ls / under the shim" \
    sh -c "ulimit -v $VM_LIMIT && LD_PRELOAD='$SHIM' ls / >'$TMP/ls.out' && test -s '$TMP/ls.out'"
check "ulimit -v $VM_LIMIT: $PYTHON -c pass under the shim" \
    sh -c "ulimit -v $VM_LIMIT && LD_PRELOAD='$SHIM' '$PYTHON' -c pass"
check "ulimit -v $VM_LIMIT: 4 threads, small and 1-4 MiB blocks, under the shim" \
    sh -c "ulimit -v $VM_LIMIT && LD_PRELOAD='$SHIM' '$OUT/preload_vm' threads"

echo "preload tests: $passed passed, $failed failed, $xfailed expected failures"
[ $failed = 0 ]
