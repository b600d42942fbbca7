# C tests: every c_tests/test_*.c is a program linked against build/liballoc.so
# that prints "name: N passed, N failed" and exits non-zero on failure.

C_TEST_SRCS := $(wildcard c_tests/test_*.c)
C_TEST_BINS := $(patsubst c_tests/%.c,$(BUILD)/c_tests/%,$(C_TEST_SRCS))
C_TEST_HDRS := $(wildcard c_tests/*.h) include/liballoc.h

$(BUILD)/c_tests/%: c_tests/%.c $(C_TEST_HDRS) $(SO_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(LINK_SO)

.PHONY: c-tests
c-tests: $(C_TEST_BINS)
	@set -e; for t in $(C_TEST_BINS); do echo "== $$t"; ./$$t; done

TESTS += c-tests
