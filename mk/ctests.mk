# C-side tests, run by `make test`:
#
#   c-tests        every c_tests/test_*.c, linked against build/liballoc.so;
#                  each prints "name: N passed, N failed", exits non-zero on failure
#   c-tests-san    the same programs built with AddressSanitizer and
#                  UndefinedBehaviorSanitizer (the C helpers compiled into each
#                  test, so they are instrumented too); a test that cannot run
#                  under ASan is named in ASAN_SKIP (e.g. ASAN_SKIP += test_foo)
#   c-tests-valgrind  the tests named in VALGRIND_TESTS under valgrind
#                  (memcheck, definite leaks are errors): unlike the sanitizer
#                  run this also watches the uninstrumented Rust library.
#                  Opt-in by name (VALGRIND_TESTS += test_foo), since valgrind
#                  runs threads one at a time and long stress tests would crawl
#   exports-test   liballoc.so exports every function of include/liballoc.h and
#                  nothing outside la_*; liballoc.a defines them all; and the
#                  checker itself rejects a wrong header and a leaky library
#   header-test    include/liballoc.h compiles alone as C99/C11/C17 and C++11/17
#                  (warnings as errors), and a C++ program links and runs
#   install-test   make install into a temporary prefix, build with pkg-config
#                  (shared and -static), make uninstall leaves nothing
#   demo-check     examples/demo.c builds and runs to completion
#
# test-tools installs what these need on a fresh machine (mk/ensure-tools.sh).

C_TEST_SRCS := $(wildcard c_tests/test_*.c)
C_TEST_BINS := $(patsubst c_tests/%.c,$(BUILD)/c_tests/%,$(C_TEST_SRCS))
C_TEST_HDRS := $(wildcard c_tests/*.h) include/liballoc.h
C_HELPER_SRCS := $(wildcard src/c/*.c)

SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all
SAN_ENV := ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1:strict_string_checks=1 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
C_SAN_BINS := $(patsubst c_tests/%.c,$(BUILD)/c_tests_san/%,$(C_TEST_SRCS))
ASAN_SKIP ?=
VALGRIND_TESTS += test_helpers test_conformance test_failing test_bad_input test_concurrency
VALGRIND := valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite

.PHONY: test-tools c-tests c-tests-san c-tests-valgrind exports-test header-test install-test demo-check

test-tools:
	@CC="$(CC)" bash mk/ensure-tools.sh pkg-config readelf nm ldd valgrind $(PYTHON) $(CC) $(CXX) asan

# cargo's lints and tests need rustfmt, clippy and a C compiler (build.rs
# compiles the C helpers) before anything else runs.
.PHONY: rust-tools
rust-tools:
	@CC="$(CC)" bash mk/ensure-tools.sh rustfmt clippy $(CC)
rust-lint rust-test: rust-tools

$(BUILD)/c_tests/%: c_tests/%.c $(C_TEST_HDRS) $(SO_LINK) | test-tools
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(LINK_SO)

$(BUILD)/c_tests_san/%: c_tests/%.c $(C_TEST_HDRS) $(C_HELPER_SRCS) $(SO_LINK) | test-tools
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -O1 $(SAN_FLAGS) -o $@ $< $(C_HELPER_SRCS) $(LINK_SO)

c-tests: $(C_TEST_BINS)
	@set -e; for t in $(C_TEST_BINS); do echo "== $$t"; ./$$t; done

c-tests-san: $(C_SAN_BINS)
	@set -e; for t in $(C_SAN_BINS); do \
	  case " $(ASAN_SKIP) " in *" $$(basename $$t) "*) echo "== $$t: skipped (ASAN_SKIP)"; continue;; esac; \
	  echo "== $$t (asan+ubsan)"; $(SAN_ENV) ./$$t; done

# The list is read when the recipe runs, after every mk/*.mk has added to it.
c-tests-valgrind: $(C_TEST_BINS)
	@set -e; for n in $(sort $(VALGRIND_TESTS)); do \
	  t=$(BUILD)/c_tests/$$n; test -x $$t || { echo "c-tests-valgrind: no $$t" >&2; exit 1; }; \
	  echo "== $$t (valgrind)"; $(VALGRIND) ./$$t; done

exports-test: $(SO_LINK) $(STATIC) | test-tools
	$(PYTHON) c_tests/check_exports.py include/liballoc.h $(SO_LINK) $(STATIC)
	$(PYTHON) c_tests/check_exports.py --self-test include/liballoc.h $(SO_LINK) $(STATIC)

CXX ?= c++
HEADER_STDS_C := c99 c11 c17
HEADER_STDS_CXX := c++11 c++17
header-test: $(SO_LINK) | test-tools
	@mkdir -p $(BUILD)/header
	@set -e; for std in $(HEADER_STDS_C); do \
	  $(CC) -std=$$std -Wall -Wextra -Wpedantic -Werror -Iinclude -o $(BUILD)/header/$$std \
	    c_tests/header_check.c $(LINK_SO); ./$(BUILD)/header/$$std > /dev/null; done
	@set -e; for std in $(HEADER_STDS_CXX); do \
	  $(CXX) -std=$$std -Wall -Wextra -Wpedantic -Werror -Iinclude -x c++ \
	    -o $(BUILD)/header/$$std c_tests/header_check.c -x none $(LINK_SO); \
	  ./$(BUILD)/header/$$std > /dev/null; done
	@echo "header-test: liballoc.h builds and links as $(HEADER_STDS_C) $(HEADER_STDS_CXX)"

install-test: lib | test-tools
	@CC="$(CC)" MAKE="$(MAKE)" bash c_tests/install_test.sh

demo-check: $(SO_LINK)
	@mkdir -p $(BUILD)
	$(CC) $(TEST_CFLAGS) -o $(BUILD)/demo examples/demo.c $(LINK_SO)
	@./$(BUILD)/demo > $(BUILD)/demo.out || { cat $(BUILD)/demo.out; exit 1; }
	@echo "demo-check: examples/demo.c ran ($$(wc -l < $(BUILD)/demo.out) lines of output)"

TESTS += c-tests c-tests-san c-tests-valgrind exports-test header-test install-test demo-check
