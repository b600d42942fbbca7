# The heap profiler of the malloc shim (src/preload/profile.rs): its tests.
#
#   make profile-test   known allocation sites, threads and fork, la-run
#                       --profile, interval and signal dumps, bad input
#                       (c_tests/profile/run_tests.sh)

.PHONY: profile-test
profile-test: $(PRELOAD_SO) $(SO_LINK) $(LA_RUN)
	CC="$(CC)" CWARN="$(CWARN)" BUILD="$(BUILD)" PYTHON="$(PYTHON)" sh c_tests/profile/run_tests.sh

TESTS += profile-test
