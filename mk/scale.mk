# Thread-scaling benchmark of the malloc shim (benches/scale/): four
# workloads with fixed work per thread, at 1, 2, 4, ... cores and 2 x cores
# threads, under glibc, mimalloc, jemalloc, tcmalloc and liballoc_preload.so.
#
#   make scale-bench    writes build/scale_bench.md and build/scale_bench.png
#                       (LA_BENCH_ROUNDS=3, LA_SCALE_THREADS="1 2 4" override)

.PHONY: scale-bench
scale-bench: $(BUILD)/liballoc_preload.so
	BUILD="$(BUILD)" CC="$(CC)" PYTHON="$(PYTHON)" sh benches/scale/run.sh

BENCHES += scale-bench
