# liballoc: build, test, install.
#
#   make            release build: build/liballoc.so (+ soname links), build/liballoc.a, header,
#                   the malloc shim build/liballoc_preload.so and the launcher build/la-run
#   make test       every test (installs missing tools itself; test-debug: the C suites
#                   against a build with debug assertions, part of make test)
#   make demo       build and run examples/demo.c
#   make bench      benchmarks (figures, not pass/fail), collected in docs/benchmarks.md
#   make install PREFIX=/usr/local   /   make uninstall PREFIX=...
#
# Areas add their own targets in mk/*.mk; each appends to TESTS (targets run
# by `make test`) and BENCHES (run by `make bench`).

PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib
INCDIR   ?= $(PREFIX)/include
BINDIR   ?= $(PREFIX)/bin
PCDIR    ?= $(LIBDIR)/pkgconfig
DESTDIR  ?=
CARGO    ?= cargo
CC       ?= cc
PYTHON   ?= python3

VERSION   := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
SOVERSION := $(firstword $(subst ., ,$(VERSION)))
BUILD     := build
RUST_SRCS := $(shell find src -type f) build.rs Cargo.toml cbindgen.toml
# cargo names the staticlib of the crate `liballoc` libliballoc.a.
RUST_A    := target/release/libliballoc.a
NATIVE_LIBS := -lgcc_s -lpthread -ldl -lc

SO_REAL   := $(BUILD)/liballoc.so.$(VERSION)
SO_NAME   := $(BUILD)/liballoc.so.$(SOVERSION)
SO_LINK   := $(BUILD)/liballoc.so
STATIC    := $(BUILD)/liballoc.a

CWARN   := -std=c11 -Wall -Wextra -Wpedantic -Werror
CFLAGS  ?= -O2 -g
TEST_CFLAGS := $(CWARN) $(CFLAGS) -Iinclude -Ic_tests -fno-omit-frame-pointer
# Link a C program against the freshly built shared library.
LINK_SO := -L$(BUILD) -lalloc -Wl,-rpath,$(abspath $(BUILD)) -lpthread

TESTS   :=
BENCHES :=

.PHONY: all lib header header-check test demo bench bench-doc install uninstall clean rust-test rust-lint
all: lib header

lib: $(SO_LINK) $(STATIC)

$(RUST_A): $(RUST_SRCS)
	$(CARGO) build --release --lib
	@touch $@

$(SO_REAL): $(RUST_A) liballoc.map
	@mkdir -p $(BUILD)
	$(CC) -shared -o $@ -Wl,-soname,liballoc.so.$(SOVERSION) \
	  -Wl,--version-script=liballoc.map -Wl,--gc-sections \
	  -Wl,--whole-archive $(RUST_A) -Wl,--no-whole-archive $(NATIVE_LIBS)

$(SO_NAME): $(SO_REAL)
	ln -sf $(notdir $(SO_REAL)) $@
$(SO_LINK): $(SO_NAME)
	ln -sf $(notdir $(SO_NAME)) $@

$(STATIC): $(RUST_A)
	@mkdir -p $(BUILD)
	cp $(RUST_A) $@

# Regenerate the checked-in header from the build script's output.
header: $(RUST_A)
	@out=$$($(CARGO) build --release --lib --message-format=json 2>/dev/null | \
	  $(PYTHON) -c 'import json,sys; [print(m["out_dir"]) for m in map(json.loads, sys.stdin) if m.get("reason")=="build-script-executed" and "/liballoc-" in m.get("out_dir","")]' | tail -n 1); \
	test -n "$$out" && cmp -s $$out/liballoc.h include/liballoc.h || { cp $$out/liballoc.h include/liballoc.h && echo "include/liballoc.h regenerated"; }

rust-lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

rust-test:
	$(CARGO) test

-include mk/*.mk

test: rust-lint rust-test $(TESTS)
	@echo "make test: all suites passed"
	@echo "suites: $(words rust-lint rust-test $(TESTS)) passed, 0 failed"

# After the benchmarks, docs/benchmarks.md is assembled from the reports they
# wrote (build/*_bench.md); `make bench-doc` does only that step.
bench: $(BENCHES)
	$(PYTHON) benches/collect.py $(BUILD) docs/benchmarks.md

bench-doc:
	$(PYTHON) benches/collect.py $(BUILD) docs/benchmarks.md

# Libs.private for `pkg-config --static`: what liballoc.a needs beyond libc.
# (Not -lgcc_s: it has no static form; the compiler driver supplies the unwinder.)
PC_PRIVATE_LIBS := -lpthread -lm -ldl

# The pkg-config file is written straight into the install tree, so it always
# names the PREFIX of this install (never a stale one).
install: lib
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(PCDIR)
	install -m 755 $(SO_REAL) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SO_REAL)) $(DESTDIR)$(LIBDIR)/liballoc.so.$(SOVERSION)
	ln -sf liballoc.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/liballoc.so
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 644 include/liballoc.h $(DESTDIR)$(INCDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@PRIVATE_LIBS@|$(PC_PRIVATE_LIBS)|' \
	    liballoc.pc.in > $(DESTDIR)$(PCDIR)/liballoc.pc
	chmod 644 $(DESTDIR)$(PCDIR)/liballoc.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/liballoc.so $(DESTDIR)$(LIBDIR)/liballoc.so.$(SOVERSION) \
	      $(DESTDIR)$(LIBDIR)/$(notdir $(SO_REAL)) $(DESTDIR)$(LIBDIR)/liballoc.a \
	      $(DESTDIR)$(INCDIR)/liballoc.h $(DESTDIR)$(PCDIR)/liballoc.pc

demo: lib
	@mkdir -p $(BUILD)
	$(CC) $(TEST_CFLAGS) -o $(BUILD)/demo examples/demo.c $(LINK_SO)
	./$(BUILD)/demo

clean:
	rm -rf $(BUILD)
	$(CARGO) clean
	rm -rf benches/rust_global/target
