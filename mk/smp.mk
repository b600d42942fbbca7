# smp allocator: stress test (built twice from one source), and benchmarks.
#
#   make smp-stress        c_tests/stress.c through la_smp_allocator (~6 s)
#   make smp-stress-malloc the same source as plain malloc code, under
#                          LD_PRELOAD of each installed peer (sanity check)
#   make smp-policy-test   c_tests/smp_policy.c: system calls per operation and
#                          per thread, RSS after a burst (idle, trimmed, forked),
#                          through the API and under the shim (~15 s)
#   make smp-bench         benches/smp_bench.c: ours vs glibc, mimalloc,
#                          jemalloc, tcmalloc (figures, not pass/fail; the
#                          table also goes to build/smp_bench.md)

SMP_STRESS_SECONDS ?= 6

$(BUILD)/smp/stress: c_tests/stress.c c_tests/check.h include/liballoc.h $(SO_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(LINK_SO)

$(BUILD)/smp/stress_malloc: c_tests/stress.c c_tests/check.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -DSTRESS_MALLOC -o $@ $< -lpthread

.PHONY: smp-stress smp-stress-malloc smp-bench
smp-stress: $(BUILD)/smp/stress
	./$(BUILD)/smp/stress $(SMP_STRESS_SECONDS) 3

SMP_PEERS := /usr/lib/x86_64-linux-gnu/libmimalloc.so.2 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
             /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
smp-stress-malloc: $(BUILD)/smp/stress_malloc
	./$(BUILD)/smp/stress_malloc 2 1
	@for p in $(SMP_PEERS); do test -f $$p || continue; echo "== LD_PRELOAD=$$p"; \
	  LD_PRELOAD=$$p ./$(BUILD)/smp/stress_malloc 2 1 || exit 1; done

TESTS += smp-stress

$(BUILD)/smp/policy: c_tests/smp_policy.c c_tests/check.h include/liballoc.h $(SO_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(LINK_SO)

$(BUILD)/smp/policy_malloc: c_tests/smp_policy.c c_tests/check.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -DPOLICY_MALLOC -o $@ $< -lpthread

.PHONY: smp-policy-test
smp-policy-test: $(BUILD)/smp/policy $(BUILD)/smp/policy_malloc $(PRELOAD_SO)
	@set -e; for m in large waves relay inherit split idle trim fork exited; do ./$(BUILD)/smp/policy $$m; done
	@set -e; shim=$(abspath $(PRELOAD_SO)); \
	  LD_PRELOAD=$$shim ./$(BUILD)/smp/policy_malloc idle; \
	  LD_PRELOAD=$$shim LA_PURGE_THREAD=0 ./$(BUILD)/smp/policy_malloc trim; \
	  LD_PRELOAD=$$shim ./$(BUILD)/smp/policy_malloc fork; \
	  LD_PRELOAD=$$shim ./$(BUILD)/smp/policy_malloc exited

TESTS += smp-policy-test

$(BUILD)/smp/bench: benches/smp_bench.c include/liballoc.h $(SO_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(CWARN) -O2 -g -Iinclude -o $@ $< $(LINK_SO)

$(BUILD)/smp/bench_malloc: benches/smp_bench.c
	@mkdir -p $(dir $@)
	$(CC) $(CWARN) -O2 -g -DBENCH_MALLOC -o $@ $< -lpthread

SMP_BENCH_RUNS ?= 3
smp-bench: $(BUILD)/smp/bench $(BUILD)/smp/bench_malloc
	@set -e; { echo "# smp allocator through its vtable vs other mallocs"; echo; \
	  echo "Command: \`make smp-bench\` (benches/smp_bench.c; la_smp through the vtable, peers preloaded under the same code)."; echo; \
	  nice $(PYTHON) benches/smp_bench.py $(BUILD)/smp/bench $(BUILD)/smp/bench_malloc $(SMP_BENCH_RUNS); } \
	  | tee $(BUILD)/smp_bench.md.tmp
	@mv $(BUILD)/smp_bench.md.tmp $(BUILD)/smp_bench.md

BENCHES += smp-bench
