# The allocator family's language bindings: Zig (bindings/zig), Python
# (bindings/python), C++ (include/liballoc.hpp). Each has a test target run
# by `make test`; the Zig benchmark runs with `make bench`.

# test_family (c_tests/test_family.c, built by mk/ctests.mk) also runs under
# valgrind: it is short, and the fork and thread tests are small.
VALGRIND_TESTS += test_family

# ---- Zig: use the reference compiler if present, else install it locally.
ZIG_LOCAL := $(BUILD)/zig/ziglang/zig
ZIG ?= $(shell if [ -x /tmp/zig/ziglang/zig ]; then echo /tmp/zig/ziglang/zig; else echo $(ZIG_LOCAL); fi)
# Zig's global cache (fetched packages included) stays inside build/.
ZIG_ENV := ZIG_GLOBAL_CACHE_DIR=$(abspath $(BUILD))/zig-global

$(ZIG_LOCAL):
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(BUILD)/zig 'ziglang>=0.17,<0.18'

# bindings/zig depends on the package at the repository root (build.zig,
# build.zig.zon) by path; that package runs `make build/liballoc.a` itself
# and links the archive, so no paths are passed here.
.PHONY: zig-test zig-bench
zig-test: $(STATIC) $(ZIG)
	cd bindings/zig && $(ZIG_ENV) $(abspath $(ZIG)) build test --summary all

zig-bench: $(STATIC) $(ZIG)
	cd bindings/zig && $(ZIG_ENV) $(abspath $(ZIG)) build bench

TESTS += zig-test
BENCHES += zig-bench

# The Zig package used as a Zig project uses it. A copy of the source tree
# (what a clone gives: no build/, target/ or .git) is fetched with
# `zig fetch --save=liballoc` into a fresh copy of c_tests/zig_consumer, and
# `zig build test` runs there: the fetched package (in the project's
# zig-pkg/) builds the library itself, inside its own folder. That built
# package is kept for the next run and put back in place of the fresh fetch
# when the hash is the same, so only a changed source tree rebuilds the
# library (fetching over a built package would hash its build outputs).
ZIG_CONSUMER := $(BUILD)/zig-consumer

.PHONY: zig-package-test
zig-package-test: $(ZIG)
	rm -rf $(ZIG_CONSUMER)/liballoc $(ZIG_CONSUMER)/app.new $(ZIG_CONSUMER)/built
	mkdir -p $(ZIG_CONSUMER)/liballoc
	tar -c --exclude=./$(BUILD) --exclude=./target --exclude=./.git --exclude=.zig-cache \
	  --exclude=zig-out --exclude=zig-pkg . | tar -x -C $(ZIG_CONSUMER)/liballoc
	cp -r c_tests/zig_consumer $(ZIG_CONSUMER)/app.new
	if [ -d $(ZIG_CONSUMER)/app/zig-pkg ]; then mv $(ZIG_CONSUMER)/app/zig-pkg $(ZIG_CONSUMER)/built; fi
	rm -rf $(ZIG_CONSUMER)/app && mv $(ZIG_CONSUMER)/app.new $(ZIG_CONSUMER)/app
	cd $(ZIG_CONSUMER)/app && $(ZIG_ENV) $(abspath $(ZIG)) fetch --save=liballoc ../liballoc
	@cd $(ZIG_CONSUMER)/app && h=$$(sed -n 's/^ *\.hash = "\(liballoc-[^"]*\)",$$/\1/p' build.zig.zon) && \
	  test -n "$$h" && test -f zig-pkg/$$h/build.zig || { echo "zig fetch did not save liballoc"; exit 1; }; \
	  echo "fetched liballoc as $$h"; \
	  if [ -d ../built/$$h ]; then rm -rf zig-pkg/$$h && mv ../built/$$h zig-pkg/ && echo "(built before)"; fi; \
	  rm -rf ../built
	cd $(ZIG_CONSUMER)/app && env -u LD_LIBRARY_PATH $(ZIG_ENV) $(abspath $(ZIG)) build test --summary all

TESTS += zig-package-test

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

# ---- Python: the package as pip installs it. python-native builds what the
# wheel bundles (bindings/python/setup.py runs it): liballoc.so and
# _la_numpy.so, numpy's memory handler (CPython-free C, not in liballoc.so).
# python-test builds the wheel, installs it with pytest and numpy from PyPI
# into a fresh venv, and runs the suite from a directory holding only the
# tests, with no LIBALLOC_PATH: it tests the installed package.
PY_SHIM   := $(BUILD)/python/_la_numpy.so
PY_VENV   := $(BUILD)/py-venv
PY_WHEELS := $(BUILD)/py-wheel
PY_RUN    := $(BUILD)/py-run

$(PY_SHIM): bindings/python/native/numpy_handler.c include/liballoc.h
	@mkdir -p $(dir $@)
	$(CC) $(CWARN) $(CFLAGS) -fPIC -shared -Iinclude -o $@ $<

.PHONY: python-native python-test
python-native: $(SO_LINK) $(PY_SHIM)

python-test: python-native
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || mk/ensure-tools.sh python3-venv
	rm -rf $(PY_VENV) $(PY_WHEELS) $(PY_RUN) bindings/python/build bindings/python/liballoc.egg-info
	$(PYTHON) -m venv $(PY_VENV)
	$(PY_VENV)/bin/pip wheel --quiet --disable-pip-version-check --no-deps -w $(PY_WHEELS) ./bindings/python
	rm -rf bindings/python/build bindings/python/liballoc.egg-info
	$(PY_VENV)/bin/python -c 'import glob, zipfile; [w] = glob.glob("$(PY_WHEELS)/liballoc-*.whl"); \
	  names = zipfile.ZipFile(w).namelist(); \
	  assert "none-any" not in w, w + " is not platform-tagged"; \
	  assert {"liballoc/liballoc.so", "liballoc/_la_numpy.so"} <= set(names), names; \
	  print("wheel ok:", w.split("/")[-1])'
	$(PY_VENV)/bin/pip install --quiet --disable-pip-version-check $(PY_WHEELS)/liballoc-*.whl pytest 'numpy>=1.22'
	@mkdir -p $(PY_RUN) && cp bindings/python/tests/*.py $(PY_RUN)/
	cd $(PY_RUN) && env -u LIBALLOC_PATH -u PYTHONPATH LIBALLOC_TEST_INSTALLED=1 \
	  $(abspath $(PY_VENV))/bin/python -m pytest -q -p no:cacheprovider .

TESTS += python-test

# ---- Examples of the family: each builds and runs to completion.
FAMILY_C_EXAMPLES := buffer_first pool thread_safe logging heap_profile

.PHONY: examples-check
examples-check: $(SO_LINK) $(STATIC) $(ZIG)
	@mkdir -p $(BUILD)/examples
	@set -e; for e in $(FAMILY_C_EXAMPLES); do \
	  $(CC) $(CWARN) -O2 -Iinclude -o $(BUILD)/examples/$$e examples/$$e.c $(LINK_SO); \
	  ./$(BUILD)/examples/$$e > $(BUILD)/examples/$$e.out; \
	  echo "example $$e: ok ($$(wc -l < $(BUILD)/examples/$$e.out) lines)"; \
	done
	$(CXX) $(CXXWARN) -O2 -Iinclude -o $(BUILD)/examples/cpp_example examples/cpp_example.cpp $(LINK_SO)
	./$(BUILD)/examples/cpp_example > $(BUILD)/examples/cpp_example.out
	LIBALLOC_PATH=$(abspath $(BUILD)) PYTHONPATH=$(abspath bindings/python) \
	  $(PYTHON) examples/python_example.py > $(BUILD)/examples/python_example.out
	cd bindings/zig && $(ZIG_ENV) $(abspath $(ZIG)) build example 2> $(abspath $(BUILD))/examples/zig_example.out
	@echo "examples-check: C, C++, Python and Zig examples ran"

TESTS += examples-check

# ---- `make install` / `uninstall` also handle the C++ header.
.PHONY: install-hpp uninstall-hpp
install: install-hpp
install-hpp:
	install -d $(DESTDIR)$(INCDIR)
	install -m 644 include/liballoc.hpp $(DESTDIR)$(INCDIR)/
uninstall: uninstall-hpp
uninstall-hpp:
	rm -f $(DESTDIR)$(INCDIR)/liballoc.hpp
