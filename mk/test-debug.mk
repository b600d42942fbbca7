# The C suites against liballoc built with debug assertions: the allocators'
# internal invariants (smp's "a block handed to free is live", checked by
# the exact classifier; the heap checker's preconditions; every
# `debug_assert!`) run under the same programs as the release build.
#
#   make test-debug   build/debug-assert/liballoc.so.N (optimised, with
#                     debug assertions and overflow checks), then every
#                     c_tests/test_*.c program, smp-stress and the smp
#                     policy tests through it (LD_LIBRARY_PATH overrides the
#                     programs' RUNPATH)

DEBUG_ASSERT_TARGET := target/debug-assert
DEBUG_ASSERT_A      := $(DEBUG_ASSERT_TARGET)/release/libliballoc.a
DEBUG_ASSERT_DIR    := $(BUILD)/debug-assert
DEBUG_ASSERT_SO     := $(DEBUG_ASSERT_DIR)/liballoc.so.$(SOVERSION)

$(DEBUG_ASSERT_A): $(RUST_SRCS)
	CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true \
	  $(CARGO) build --release --lib --target-dir $(DEBUG_ASSERT_TARGET)
	@touch $@

$(DEBUG_ASSERT_SO): $(DEBUG_ASSERT_A) liballoc.map
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ -Wl,-soname,liballoc.so.$(SOVERSION) \
	  -Wl,--version-script=liballoc.map -Wl,--gc-sections \
	  -Wl,--whole-archive $(DEBUG_ASSERT_A) -Wl,--no-whole-archive $(NATIVE_LIBS)

.PHONY: test-debug
test-debug: $(DEBUG_ASSERT_SO) $(C_TEST_BINS) $(BUILD)/smp/stress $(BUILD)/smp/policy
	@set -e; export LD_LIBRARY_PATH=$(abspath $(DEBUG_ASSERT_DIR)); \
	  for t in $(C_TEST_BINS); do echo "== $$t (debug assertions)"; ./$$t; done; \
	  ./$(BUILD)/smp/stress 3 3; \
	  for m in large waves idle; do ./$(BUILD)/smp/policy $$m; done

TESTS += test-debug
