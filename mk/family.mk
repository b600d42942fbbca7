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
