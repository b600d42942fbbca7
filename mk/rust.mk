# liballoc as a Rust crate: its packaging test and the global-allocator
# benchmark.
#
#   make rust-crate-test   a new cargo project depends on liballoc with
#                          `cargo add --path` and runs with LibAlloc as its
#                          global allocator; the Rust examples run
#   make rust-bench        benches/rust_global: liballoc vs the mimalloc
#                          crate vs the system allocator as global allocator
#                          (part of `make bench`; report build/rust_bench.md)
#
# LA_BENCH_RUST_ROUNDS (default 5) runs per allocator, LA_BENCH_RUST_THREADS
# threads per phase (default 0: the CPU count, at least 2).

LA_BENCH_RUST_ROUNDS  ?= 5
LA_BENCH_RUST_THREADS ?= 0
RUST_BENCH_DIR := benches/rust_global

.PHONY: rust-crate-test rust-bench
rust-crate-test: rust-tools
	CARGO="$(CARGO)" sh tests/rust_consumer.sh $(abspath $(BUILD))/rust-consumer
	$(CARGO) run --quiet --release --example rust_global > $(BUILD)/rust_global.out
	$(CARGO) run --quiet --example rust_arena > $(BUILD)/rust_arena.out 2>/dev/null
	@echo "rust-crate-test: consumer project and Rust examples ran"

rust-bench: rust-tools
	cd $(RUST_BENCH_DIR) && $(CARGO) build --release --quiet
	$(PYTHON) $(RUST_BENCH_DIR)/run.py $(RUST_BENCH_DIR)/target/release \
	  $(BUILD)/rust_bench.md $(LA_BENCH_RUST_ROUNDS) $(LA_BENCH_RUST_THREADS)

TESTS   += rust-crate-test
BENCHES += rust-bench
