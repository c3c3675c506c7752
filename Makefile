# faultline: the two commands of the README, and the rest of the developer loop.
#   make run     install dependencies, build, run faultline serve on the embedded configuration
#   make test    install dependencies, build, run every test (unit, conformance, CLI)
#   make bench   the seed benchmark side by side with the Go and Python references
PRESET ?= release
BUILD  := build/$(PRESET)
BIN    := $(BUILD)/server/faultline
SHARED ?= $(abspath ../shared)
RUNS   ?= 3

.PHONY: all deps build run scan-sample test test-sanitizers test-tsan fuzz soak bench bench-check bench-engine bench-http bench-mining format clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja: CMakeLists.txt CMakePresets.json
	cmake --preset $(PRESET)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD)

run: build
	$(BIN) serve

scan-sample: build
	$(BIN) scan --templates exact deploy/samples/cloudwatch-sample.jsonl.gz

test: build
	ctest --test-dir $(BUILD) --output-on-failure

# The concurrent parts (pipeline, scan, pattern swaps) under ThreadSanitizer.
test-tsan: deps
	cmake --preset tsan -DFAULTLINE_BUILD_LOADTEST=OFF
	cmake --build build/tsan --target faultline_tsan_tests
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=1" \
	  build/tsan/tests/faultline_tsan_tests -tc='*pipeline*,*scan*,*session*,*journal*,*edge*,*dedupe_store*,*dedupe_cache*,*durable_state*'

# Unit, conformance, command-line, HTTP, hostile and fuzz-corpus tests again under ASan + UBSan
# (clang: the same build holds the libFuzzer targets, so CI's short fuzz runs need no build of
# their own: make fuzz FUZZ_PRESET=asan-ubsan).
test-sanitizers:
	@bash scripts/install-deps.sh --fuzz
	cmake --preset asan-ubsan -DFAULTLINE_BUILD_LOADTEST=OFF
	cmake --build build/asan-ubsan
	ctest --test-dir build/asan-ubsan --output-on-failure -R 'unit|conformance|cli|server|hostile|edge|fuzz'

# Every libFuzzer target (clang, ASan+UBSan) for SECONDS each (RUNS: or that many executions).
# The seed corpora also run without libFuzzer in `make test` (ctest fuzz_*). FUZZ_PRESET: fuzz
# (optimized, the fuzzers alone: long runs) or asan-ubsan (the sanitizer tests' build: CI).
SECONDS ?= 60
FUZZ_RUNS ?= 0
FUZZ_PRESET ?= fuzz
fuzz:
	@bash scripts/install-deps.sh --fuzz
	cmake --preset $(FUZZ_PRESET) $(if $(filter asan-ubsan,$(FUZZ_PRESET)),-DFAULTLINE_BUILD_LOADTEST=OFF)
	cmake --build build/$(FUZZ_PRESET) --target fuzzers
	bash tests/fuzz/run.sh build/$(FUZZ_PRESET) $(SECONDS) $(FUZZ_RUNS) $(FUZZ_TARGETS)

# 10 minutes of mixed load: RSS every 10 s, exact conservation, flat memory (loadtest/soak.sh).
DURATION ?= 600
soak: build
	bash loadtest/soak.sh --duration $(DURATION)

# The seed benchmark (../shared/bench): Go, Python --jobs 2 and faultline, same run, medians.
bench: build
	@bash scripts/install-deps.sh --bench
	bash loadtest/seed_bench.sh --runs $(RUNS)

# The figures once reached, against same-sitting baselines (nginx, the engine limit), each
# checked against its floor in loadtest/floors.txt: fails when one falls below (CI runs it).
bench-check: build
	@bash scripts/install-deps.sh --bench-check
	bash loadtest/bench_check.sh --build $(BUILD)

# faultline's events per CPU-second next to the machine's limit for this work.
bench-engine: build
	@bash scripts/install-deps.sh --bench
	bash loadtest/engine_bench.sh

bench-http: build
	@bash scripts/install-deps.sh --bench
	bash loadtest/http_bench.sh --runs $(RUNS)

bench-mining: build
	@bash scripts/install-deps.sh --bench
	bash loadtest/engine_bench.sh --runs 1 >/dev/null  # generates the seed input when missing
	$(BUILD)/loadtest/mine_bench $(SHARED)/bench/patterns.txt /tmp/seedbench/cwl-1000000-s42.jsonl

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf build
