# Colony — top-level entry points. `make run` and `make test` install what they
# need (Debian 12 packages), build, and run. See README.md.
BUILD_DIR  ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= 2
SANITIZE   ?=
CTEST_ARGS ?=
# ccache hashes paths relative to the checkout, so every clone shares the cache.
export CCACHE_BASEDIR := $(CURDIR)

# Everything the build, the node and the tests need, as Debian 12 packages.
DEBS := cmake make g++ pkg-config ccache libcaf-dev libboost-dev libpqxx-dev libsqlite3-dev \
        libprotobuf-dev protobuf-compiler libspdlog-dev prometheus-cpp-dev nlohmann-json3-dev \
        catch2 libjemalloc-dev libssl-dev openssl clang libclang-rt-14-dev librdkafka-dev kcat wrk nginx-light gnuplot-nox postgresql-15 postgresql-client-15 iproute2 util-linux python3 curl clang-format clang-tidy \
        libcli11-dev libncurses-dev tmux chromium fonts-dejavu-core liblua5.4-dev json-schema-test-suite

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: deps node-deps build run test test-sanitize fuzz-build fuzz bench format tidy clean

deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Node.js tooling of the tests (the OpenAPI validator, playwright-core for the console's
# browser tests against Debian's chromium), from the committed lock files.
node-deps:
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "installing Debian packages: nodejs npm"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
	@cd tests/openapi && npm ci --no-audit --no-fund --loglevel=error >/dev/null
	@cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null

build: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCOLONY_WERROR=ON -DCOLONY_SANITIZE=$(SANITIZE) >/dev/null
	cmake --build $(BUILD_DIR) -j$(JOBS)

run: build
	$(BUILD_DIR)/bin/colonyd --config config/colony.conf

test: build node-deps $(if $(SANITIZE),,fuzz-build)
	@# On a failure, the log ends with why each failing test failed (tests/support/failure_digest.py).
	cd $(BUILD_DIR) && { ctest --output-on-failure --timeout 900 $(CTEST_ARGS) || \
	  { python3 $(CURDIR)/tests/support/failure_digest.py Testing/Temporary/LastTest.log; exit 1; }; }
	$(if $(SANITIZE),,tests/fuzz/run.sh $(FUZZ_DIR)/bin $(FUZZ_SECONDS))

# libFuzzer targets (clang, everything instrumented, ASan+UBSan). make test runs
# each for FUZZ_SECONDS (60); `make fuzz FUZZ_SECONDS=3600` for a long run.
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
fuzz-build: deps
	@cmake -S . -B $(FUZZ_DIR) -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOLONY_FUZZ=ON >/dev/null
	cmake --build $(FUZZ_DIR) -j$(JOBS) --target fuzz_http fuzz_jwt fuzz_cursor fuzz_plugin

fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_DIR)/bin $(FUZZ_SECONDS)

# The unit and integration tests under AddressSanitizer + UndefinedBehaviorSanitizer.
# Every test but the benchmark smoke, with the node and the tests built with
# ASan and UBSan; any report stops the process, so it fails its test.
test-sanitize:
	ASAN_OPTIONS=halt_on_error=1:detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(MAKE) test BUILD_DIR=build-asan BUILD_TYPE=Debug SANITIZE=address,undefined CTEST_ARGS="-LE bench"

# Release build, then every figure/reference pair; BENCH_ARGS e.g. "--seconds 10 --users 200000".
BENCH_ARGS ?=
bench: deps
	@cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DCOLONY_WERROR=ON >/dev/null
	cmake --build build-release -j$(JOBS) --target colonyd colony-bench-actors
	COLONYD=build-release/bin/colonyd COLONY_BENCH_ACTORS=build-release/bin/colony-bench-actors \
	  python3 tests/bench/bench.py --out build/bench $(BENCH_ARGS)

# Formats the tree as .clang-format says (the `format` test checks it).
format:
	@find protocol actors runtime adapters tests \( -name '*.cpp' -o -name '*.hpp' \) -print | xargs clang-format -i

tidy: build
	@find actors runtime adapters protocol -name '*.cpp' | xargs clang-tidy -p $(BUILD_DIR) --quiet

clean:
	rm -rf $(BUILD_DIR) build-asan build-fuzz
