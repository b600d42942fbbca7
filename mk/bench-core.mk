# Benchmark of the core allocators (benches/core_bench.c): ns per alloc+free
# beside glibc malloc/free and an inline pointer bump, one table per run.
#
#   make bench-core      (part of `make bench`)
#
# `make test` runs it once in --quick mode (bench-core-smoke): it must build
# and run to the end; its figures are not judged.

CORE_BENCH := $(BUILD)/benches/core_bench

$(CORE_BENCH): benches/core_bench.c include/liballoc.h $(SO_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(CWARN) -O2 -g -Iinclude -o $@ $< $(LINK_SO)

.PHONY: bench-core bench-core-smoke
bench-core: $(CORE_BENCH)
	nice ./$(CORE_BENCH)

bench-core-smoke: $(CORE_BENCH)
	@./$(CORE_BENCH) --quick > $(BUILD)/benches/core_bench.quick.out || \
	  { cat $(BUILD)/benches/core_bench.quick.out; exit 1; }
	@echo "bench-core-smoke: core_bench --quick ran ($$(grep -c x$$ $(BUILD)/benches/core_bench.quick.out) ratio rows)"

BENCHES += bench-core
TESTS += bench-core-smoke
