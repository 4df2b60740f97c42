# unmix-c front door. `make demo` and `make test` do all set-up on a fresh Debian machine.
#   make deps     install the Debian packages we need (only the missing ones)
#   make          configure + build (Release) into $(BUILD); nothing else
#   make test     build, run every Check suite, then an ASan/UBSan build and its suites
#   make demo     MoCo vs MoCo + Un-Mix on Fashion-MNIST, on the CPU (<= 10 min on 2 cores)
#   make demo-clean  forget the demo's runs and outputs (results/demo/)
# Paper targets (reproduce-cifar10, sweep-prob, figures, tables, ...) live in Makefile.paper
# (`make paper-help`); knobs: SCALE=full|smoke DATA_ROOT=data BACKEND=auto|cpu|cuda NPROC=1 UNMIX=...

BUILD ?= build
BUILD_ASAN ?= build-asan
BUILD_TYPE ?= Release
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
UNMIX ?= $(BUILD)/unmix

.PHONY: all deps build build-unmix test test-fast test-asan demo demo-clean clean help
# The default goal is pinned: Makefile.paper (included below) must never add to it.
.DEFAULT_GOAL := all
all: build

help:
	@sed -n '1,10p' Makefile

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

test-fast: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)

# Sanitizer pass: the CPU suites again under AddressSanitizer + UBSan (no CUDA).
test-asan: deps
	@cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DUNMIX_SANITIZE=ON -DUNMIX_CUDA=OFF >/dev/null
	@cmake --build $(BUILD_ASAN) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=0 UNMIX_SANITIZED=1 ctest --test-dir $(BUILD_ASAN) --output-on-failure -j$(JOBS) -L cpu -LE slow

test: test-fast test-asan

# The demo needs only the `unmix` binary, not the test suites.
build-unmix: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target unmix

# MoCo vs MoCo + Un-Mix on the real Fashion-MNIST (configs/fmnist/), kNN, t-SNE, table, figures
# under results/demo/. Finished runs are re-used; an interrupted one resumes.
DEMO_OUT ?= results/demo
DEMO_TSNE_CMD ?= $(UNMIX) tsne {run}/checkpoint.safetensors --out {run} --n 1000
demo: build-unmix
	@UNMIX='$(UNMIX)' DEMO_OUT='$(DEMO_OUT)' TSNE_CMD='$(DEMO_TSNE_CMD)' scripts/demo.sh

demo-clean:
	rm -rf $(DEMO_OUT)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)

include Makefile.paper
