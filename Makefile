# Switchyard's front door. `make run` and `make test` work on a fresh Debian 12 machine:
# they install what is missing (Debian packages, npm and PyPI test clients), build, and go.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
PRESET ?= release
BUILD := build/$(PRESET)
CONFIG ?= examples/switchyard.yaml

.PHONY: all deps test-deps build run test test-asan test-sanitizers bench fmt fmt-check lint clean

all: build

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test
	@scripts/install-test-deps.sh

build: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# `make run` builds only the server binary (not the tests), then starts it.
run: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target switchyard
	@echo "Switchyard on http://127.0.0.1:8080 — write keys: wk_web_demo (source web), wk_backend_demo (source backend)"
	@echo "Send an event:"
	@echo "  curl -u wk_web_demo: -H 'Content-Type: application/json' -d '{\"userId\":\"u1\",\"event\":\"Signed Up\"}' http://127.0.0.1:8080/v1/track"
	@echo "See it stored:  $(BUILD)/switchyard dump --config $(CONFIG)"
	@exec $(BUILD)/switchyard serve --config $(CONFIG)

test: test-deps build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) --timeout 900

test-asan:
	@$(MAKE) --no-print-directory test PRESET=asan-ubsan

# Unit, property and fuzz-corpus tests under AddressSanitizer + UBSan (the end-to-end suites
# run against the release binary in `make test`). CI runs this after `make test`.
test-sanitizers: deps
	@cmake --preset asan-ubsan >/dev/null
	@cmake --build build/asan-ubsan -j $(JOBS)
	@ctest --test-dir build/asan-ubsan --output-on-failure -j $(JOBS) --timeout 900 -LE 'e2e|browser'

bench: build
	@scripts/install-deps.sh bench
	@bench/run-all.sh $(BUILD)

fmt: deps
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

fmt-check: deps
	@git ls-files '*.cc' '*.h' | xargs clang-format --dry-run --Werror

lint: fmt-check

clean:
	rm -rf build

# docs/destinations/ from the destinations' settings tables (ctest destination_docs_current
# fails when it is stale).
.PHONY: docs-destinations
docs-destinations: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target destination_docs
	@$(BUILD)/src/destinations/destination_docs --write docs/destinations
