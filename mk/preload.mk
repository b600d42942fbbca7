# The malloc shim: build/liballoc_preload.so, its tests and benchmarks.
#
# The shim is the crate built with the `preload` feature into its own target
# directory (so liballoc.a / liballoc.so never contain malloc), linked with
# src/preload/cxx_new.c and a version script that exports only the malloc
# family and the C++ operators.

PRELOAD_TARGET := target/preload
PRELOAD_A      := $(PRELOAD_TARGET)/release/libliballoc.a
PRELOAD_SO     := $(BUILD)/liballoc_preload.so
PRELOAD_MAP    := src/preload/preload.map
# Places the code every process runs at the start of the text (see the
# file). Valgrind's tools name only code in `.text`: for callgrind profiles
# with function names, build with `make PRELOAD_HOT_LD=` (link order; the
# preload test of the shim's resident code then fails, as it should).
PRELOAD_HOT_LD ?= src/preload/hot.ld
PRELOAD_HOT_FLAGS := $(if $(PRELOAD_HOT_LD),-Xlinker -T -Xlinker $(PRELOAD_HOT_LD))
# The unwinder that the Rust standard library references (and the
# profiler's `_Unwind_Backtrace`) is linked in statically: with libgcc_s
# as a dependency, every process run under the shim loaded it (about 80 kB
# resident) for code that a normal run never calls.
PRELOAD_LIBS   := -static-libgcc -lpthread -ldl -lc
PRELOAD_NEW_O  := $(BUILD)/preload/cxx_new.o
PRELOAD_TBIN   := $(BUILD)/preload
PRELOAD_TESTSH := c_tests/preload/run_tests.sh
# The same shim with an unchecked free, for the benchmark's cost-of-checks
# column only (never installed).
PRELOAD_UNCHECKED_TARGET := target/preload-unchecked
PRELOAD_UNCHECKED_SO     := $(BUILD)/bench/liballoc_preload_unchecked.so

lib: $(PRELOAD_SO)

$(PRELOAD_A): $(RUST_SRCS)
	$(CARGO) build --release --lib --features preload --target-dir $(PRELOAD_TARGET)
	@touch $@

# With frame pointers, as every frame of the shim: a trace taken by
# walking them (the debug mode's) goes through operator new to its caller.
$(PRELOAD_NEW_O): src/preload/cxx_new.c
	@mkdir -p $(dir $@)
	$(CC) $(CWARN) -O2 -g -fPIC -fexceptions -fno-omit-frame-pointer -c -o $@ $<

$(PRELOAD_SO): $(PRELOAD_A) $(PRELOAD_NEW_O) $(PRELOAD_MAP) $(PRELOAD_HOT_LD)
	@mkdir -p $(BUILD)
	$(CC) -shared -o $@ -Wl,-soname,liballoc_preload.so \
	  -Wl,--version-script=$(PRELOAD_MAP) -Wl,--gc-sections -Wl,-z,now \
	  $(PRELOAD_HOT_FLAGS) \
	  $(PRELOAD_NEW_O) -Wl,--whole-archive $(PRELOAD_A) -Wl,--no-whole-archive $(PRELOAD_LIBS)

$(PRELOAD_UNCHECKED_SO): $(RUST_SRCS) $(PRELOAD_NEW_O) $(PRELOAD_MAP) $(PRELOAD_HOT_LD)
	$(CARGO) build --release --lib --features bench-unchecked-free --target-dir $(PRELOAD_UNCHECKED_TARGET)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ -Wl,-soname,liballoc_preload.so \
	  -Wl,--version-script=$(PRELOAD_MAP) -Wl,--gc-sections -Wl,-z,now \
	  $(PRELOAD_HOT_FLAGS) \
	  $(PRELOAD_NEW_O) -Wl,--whole-archive $(PRELOAD_UNCHECKED_TARGET)/release/libliballoc.a \
	  -Wl,--no-whole-archive $(PRELOAD_LIBS)

.PHONY: preload preload-test preload-rust-test preload-bench
preload: $(PRELOAD_SO)

# Rust unit tests and lints of the shim's modules (feature build).
preload-rust-test:
	$(CARGO) clippy --all-targets --features preload --target-dir $(PRELOAD_TARGET) -- -D warnings
	$(CARGO) test --lib --features preload --target-dir $(PRELOAD_TARGET) preload::

preload-test: $(PRELOAD_SO) $(SO_LINK)
	CC="$(CC)" CWARN="$(CWARN)" BUILD="$(BUILD)" PYTHON="$(PYTHON)" sh $(PRELOAD_TESTSH)

preload-bench: $(PRELOAD_SO) $(PRELOAD_UNCHECKED_SO)
	BUILD="$(BUILD)" CC="$(CC)" PYTHON="$(PYTHON)" sh benches/preload/run.sh

TESTS   += preload-rust-test preload-test
BENCHES += preload-bench

# `make install` / `make uninstall` also handle the shim (prerequisites
# added here, so the top-level rules stay as they are).
.PHONY: install-preload uninstall-preload
install: install-preload
uninstall: uninstall-preload
install-preload: $(PRELOAD_SO)
	install -d $(DESTDIR)$(LIBDIR)
	install -m 755 $(PRELOAD_SO) $(DESTDIR)$(LIBDIR)/
uninstall-preload:
	rm -f $(DESTDIR)$(LIBDIR)/liballoc_preload.so
