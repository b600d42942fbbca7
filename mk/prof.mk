# la-prof, the converter of raw heap profiles, and its tests.
#
#   build/la-prof        the converter (a separate cargo package in
#                        tools/la-prof/, built into build/la-prof-target;
#                        installed into $(BINDIR) by make install)
#   make prof-convert-test
#                        la-prof's lints and unit tests, then a raw profile
#                        made from known call sites (c_tests/prof/) read by
#                        la-prof: the text table, pprof read back by
#                        `go tool pprof`, flame graphs, the chart, bad input

LA_PROF         := $(BUILD)/la-prof
LA_PROF_DIR     := tools/la-prof
LA_PROF_TARGET  := $(abspath $(BUILD))/la-prof-target
LA_PROF_SRCS    := $(shell find $(LA_PROF_DIR)/src -type f) $(LA_PROF_DIR)/Cargo.toml $(LA_PROF_DIR)/Cargo.lock
LA_PROF_CARGO   := cd $(LA_PROF_DIR) && $(CARGO)
PROF_TEST_DIR   := $(BUILD)/prof

.PHONY: la-prof prof-convert-test prof-tools install-la-prof uninstall-la-prof
la-prof: $(LA_PROF)

$(LA_PROF): $(LA_PROF_SRCS)
	$(LA_PROF_CARGO) build --release --locked --target-dir $(LA_PROF_TARGET)
	@mkdir -p $(BUILD)
	cp $(LA_PROF_TARGET)/release/la-prof $@

prof-tools:
	@CC="$(CC)" bash mk/ensure-tools.sh rustfmt clippy go objcopy readelf $(PYTHON) $(CC)

# The sites program: call sites in the executable and in a library built
# without frame pointers, found through their return addresses.
$(PROF_TEST_DIR)/libsites.so: c_tests/prof/libsites.c c_tests/prof/sites.h
	@mkdir -p $(dir $@)
	$(CC) $(CWARN) -O1 -g -fPIC -fomit-frame-pointer -shared -o $@ $<
$(PROF_TEST_DIR)/sites: c_tests/prof/sites.c c_tests/prof/sites.h $(PROF_TEST_DIR)/libsites.so
	$(CC) $(CWARN) -O1 -g -rdynamic -o $@ $< -L$(PROF_TEST_DIR) -lsites -Wl,-rpath,'$$ORIGIN'

prof-convert-test: prof-tools $(LA_PROF) $(PROF_TEST_DIR)/sites
	$(LA_PROF_CARGO) fmt --check
	$(LA_PROF_CARGO) clippy --release --locked --target-dir $(LA_PROF_TARGET) --all-targets -- -D warnings
	$(LA_PROF_CARGO) test --release --locked --target-dir $(LA_PROF_TARGET)
	rm -rf $(PROF_TEST_DIR)/work
	$(PYTHON) c_tests/prof/check.py $(LA_PROF) $(PROF_TEST_DIR)/sites $(PROF_TEST_DIR)/work

install: install-la-prof
uninstall: uninstall-la-prof
install-la-prof: $(LA_PROF)
	install -d $(DESTDIR)$(BINDIR)
	install -m 755 $(LA_PROF) $(DESTDIR)$(BINDIR)/la-prof
uninstall-la-prof:
	rm -f $(DESTDIR)$(BINDIR)/la-prof

TESTS += prof-convert-test
