# The allocator family's language bindings: Zig (bindings/zig), Python
# (bindings/python), C++ (include/liballoc.hpp). Each has a test target run
# by `make test`; the Zig benchmark runs with `make bench`.

# ---- Zig: use the reference compiler if present, else install it locally.
ZIG_LOCAL := $(BUILD)/zig/ziglang/zig
ZIG ?= $(shell if [ -x /tmp/zig/ziglang/zig ]; then echo /tmp/zig/ziglang/zig; else echo $(ZIG_LOCAL); fi)
ZIG_FLAGS := -Dlib-dir=$(abspath $(BUILD)) -Dinclude-dir=$(abspath include)

$(ZIG_LOCAL):
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(BUILD)/zig ziglang

.PHONY: zig-test zig-bench
zig-test: $(SO_LINK) $(ZIG)
	cd bindings/zig && $(abspath $(ZIG)) build test --summary all $(ZIG_FLAGS)

zig-bench: $(SO_LINK) $(ZIG)
	cd bindings/zig && $(abspath $(ZIG)) build bench $(ZIG_FLAGS)

TESTS += zig-test
BENCHES += zig-bench

# ---- C++: include/liballoc.hpp, plain and under AddressSanitizer.
CXX ?= c++
CXXWARN := -std=c++17 -Wall -Wextra -Werror
CPP_TEST_SRC := c_tests/cpp_family.cpp
CPP_TEST_DEPS := $(CPP_TEST_SRC) include/liballoc.hpp include/liballoc.h c_tests/check.h $(SO_LINK)

$(BUILD)/cpp/cpp_family: $(CPP_TEST_DEPS)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXWARN) -O1 -g -Iinclude -Ic_tests -o $@ $(CPP_TEST_SRC) $(LINK_SO)

$(BUILD)/cpp/cpp_family_asan: $(CPP_TEST_DEPS)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXWARN) -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -Iinclude -Ic_tests \
	  -o $@ $(CPP_TEST_SRC) $(LINK_SO)

.PHONY: cpp-test
cpp-test: $(BUILD)/cpp/cpp_family $(BUILD)/cpp/cpp_family_asan
	@for t in cpp_family cpp_family_asan; do \
	  ASAN_OPTIONS=detect_leaks=1 ./$(BUILD)/cpp/$$t > $(BUILD)/cpp/$$t.log 2>&1; rc=$$?; \
	  echo "$$t: $$(tail -n 1 $(BUILD)/cpp/$$t.log)"; \
	  if [ $$rc -ne 0 ]; then cat $(BUILD)/cpp/$$t.log; exit $$rc; fi; \
	done

TESTS += cpp-test
