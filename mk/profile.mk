# The heap profiler of the malloc shim (src/preload/profile.rs): its tests.
#
#   make profile-test   known allocation sites (read by la-prof too), threads and fork, la-run
#                       --profile, interval and signal dumps, bad input
#                       (c_tests/profile/run_tests.sh)
#   make profile-bench  what profiling costs on the preload workloads, beside
#                       mimalloc and heaptrack, and on the real programs of
#                       the preload tests (benches/profile/cost.py)

.PHONY: profile-test
profile-test: $(PRELOAD_SO) $(SO_LINK) $(LA_RUN) $(LA_PROF)
	CC="$(CC)" CWARN="$(CWARN)" BUILD="$(BUILD)" PYTHON="$(PYTHON)" sh c_tests/profile/run_tests.sh

TESTS += profile-test

# The profiler's cost on the preload workloads: profiling off, at the
# default rate and at a 10x higher one, beside mimalloc and heaptrack; then
# on the preload tests' real programs (python3, sqlite3, gcc, g++, git)
# (ratios to the unprofiled shim; build/profile_bench.md).
.PHONY: profile-bench
profile-bench: $(PRELOAD_SO)
	@CC="$(CC)" bash mk/ensure-tools.sh heaptrack libmimalloc.so.2
	@mkdir -p $(BUILD)/preload
	$(CC) $(CWARN) -O2 -o $(BUILD)/preload/workloads benches/preload/workloads.c -lpthread
	$(PYTHON) benches/profile/cost.py $(PRELOAD_SO) $(BUILD)/preload/workloads $${LA_BENCH_ROUNDS:-7} $(BUILD)/profile_bench.md

BENCHES += profile-bench
