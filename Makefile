# The README's two commands: `make demo` and `make test`. Both install what is missing first.
SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin
APT_PACKAGES := libsodium-dev libopenblas-dev libssl-dev zlib1g-dev libsqlite3-dev pkg-config dataset-fashion-mnist
# The tests also render the budget report in a real headless browser.
TEST_APT_PACKAGES := chromium
ARGS ?=

.PHONY: deps build demo test bench bench-peers clean

# Installs the Debian packages that are not there yet (with sudo when not root).
deps:
	@missing=""; for p in $(APT_PACKAGES) $(EXTRA_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing" >&2; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; } >&2; \
	fi

# Build output goes to standard error, so `make demo ARGS=--json` prints only the JSON summary on stdout.
build: deps
	@swift build -c release >&2

# A whole federated run on this machine: `make demo ARGS="--rounds 10 --json"` passes options to `conclave demo`.
demo: build
	@.build/release/conclave demo $(ARGS)

# Builds everything (the end-to-end tests start the real executables) and runs every test.
test:
	@$(MAKE) --no-print-directory deps EXTRA_APT_PACKAGES="$(TEST_APT_PACKAGES)"
	swift build --build-tests
	@# The tests run on the OpenBLAS kernels Conclave selects (set only where OpenBLAS alone would choose worse).
	core="$${OPENBLAS_CORETYPE:-$$(.build/debug/conclave blas --coretype)}"; \
	if [ -n "$$core" ]; then echo "tests run with OPENBLAS_CORETYPE=$$core" >&2; export OPENBLAS_CORETYPE="$$core"; fi; \
	swift test --skip-build

# The benchmarks of Benchmarks/README.md.
bench: build
	.build/release/conclave bench training
	.build/release/conclave bench aggregation --silos 10 --params 1000000

# Conclave against PyTorch, Opacus and Flower on this machine (Benchmarks/peers/README.md); peers in a git-ignored venv.
bench-peers: build
	bash Benchmarks/peers/run.sh

clean:
	rm -rf .build demo-work
