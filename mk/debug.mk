# The debug allocator's end-to-end tests, la-run and the leak-check benchmark.
#
#   make debug-test    seeded-bug programs and clean programs under la-run --debug
#   make debug-bench   leak check under la-run --debug vs valgrind vs native
#                      (the workload suite also built with AddressSanitizer)
#   build/la-run       the launcher (installed into $(BINDIR) by make install)

LA_RUN         := $(BUILD)/la-run
DEBUG_PRELOAD  := $(BUILD)/liballoc_preload.so
DEBUG_BUG_SRCS := $(filter-out c_tests/debug/common.h,$(wildcard c_tests/debug/*.c))
DEBUG_BUG_BINS := $(patsubst c_tests/debug/%.c,$(BUILD)/debug/%,$(DEBUG_BUG_SRCS))

lib: $(LA_RUN)

$(LA_RUN): src/tools/la_run.c include/liballoc.h
	@mkdir -p $(BUILD)
	$(CC) $(CWARN) -O2 -g -Iinclude -o $@ $<

$(BUILD)/debug/%: c_tests/debug/%.c c_tests/debug/common.h include/liballoc.h $(SO_LINK)
	@mkdir -p $(dir $@)
	$(CC) $(CWARN) -O1 -g -fno-omit-frame-pointer -Iinclude -o $@ $< $(LINK_SO)

.PHONY: debug-test debug-bench install-la-run uninstall-la-run
debug-test: $(LA_RUN) $(DEBUG_PRELOAD) $(DEBUG_BUG_BINS)
	BUILD="$(BUILD)" CC="$(CC)" PYTHON="$(PYTHON)" sh c_tests/debug/run_tests.sh

debug-bench: $(LA_RUN) $(DEBUG_PRELOAD) $(DEBUG_BUG_BINS)
	BUILD="$(BUILD)" CC="$(CC)" PYTHON="$(PYTHON)" sh benches/debug/run.sh

# la-run finds the shim (installed by mk/preload.mk) in $(BINDIR)/../lib.
install: install-la-run
uninstall: uninstall-la-run
install-la-run: $(LA_RUN)
	install -d $(DESTDIR)$(BINDIR)
	install -m 755 $(LA_RUN) $(DESTDIR)$(BINDIR)/la-run
uninstall-la-run:
	rm -f $(DESTDIR)$(BINDIR)/la-run

TESTS   += debug-test
BENCHES += debug-bench
