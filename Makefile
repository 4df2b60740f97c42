# unmix-c front door. `make demo` and `make test` do all set-up on a fresh Debian machine.
#   make deps     install the Debian packages we need (only the missing ones)
#   make          configure + build (Release) into $(BUILD); nothing else
#   make test     build, run every Check suite, then an ASan/UBSan build and its suites, then the
#                 GPU suites on the emulated CUDA device (UNMIX_CUDA=EMU), plain and under
#                 ASan/UBSan, then each libFuzzer harness for a few seconds on its seed corpus
#   make fuzz     each fuzz harness for FUZZ_SECONDS (default 60) per harness, or FUZZ_RUNS
#                 executions if set and reached first; new inputs go to
#                 $(BUILD_FUZZ)/corpus/NAME, crashes to $(BUILD_FUZZ)/crash-NAME-*
#   make demo     MoCo vs MoCo + Un-Mix on Fashion-MNIST (GPU if usable, else CPU: <= 10 min on 2 cores);
#                 SEEDS=n trains n seeds of each (mean +- std in the table)
#   make demo-clean  forget the demo's runs and outputs (results/demo/)
#   make study-fmnist  the comparison on an 8,000-image subset with 28-px crops, 3 seeds each
#                 (<= 1 h on 2 cores), table in results/study-fmnist/
# Paper targets (reproduce-cifar10, sweep-prob, figures, tables, ...) live in Makefile.paper
# (`make paper-help`); knobs: SCALE=full|smoke DATA_ROOT=data BACKEND=auto|cpu|cuda NPROC=1 UNMIX=...

BUILD ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
FUZZ_CC ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 5
BUILD_EMU ?= build-emu
BUILD_EMU_ASAN ?= build-emu-asan
BUILD_TYPE ?= Release
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
UNMIX ?= $(BUILD)/unmix

.PHONY: all deps build build-unmix test test-fast test-asan test-fuzz fuzz build-fuzz test-emu test-emu-asan demo demo-clean study-fmnist clean help
# The default goal is pinned: Makefile.paper (included below) must never add to it.
.DEFAULT_GOAL := all
all: build

help:
	@sed -n '1,16p' Makefile

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

# libFuzzer harnesses (tests/fuzz/fuzz_*.c, clang + ASan + UBSan): `make fuzz` runs each for
# FUZZ_SECONDS; `make test` runs each for FUZZ_TEST_SECONDS so CI catches a regression.
build-fuzz: deps
	@CC=$(FUZZ_CC) cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUNMIX_FUZZ=ON -DUNMIX_CUDA=OFF \
	    -DUNMIX_DIST=OFF >/dev/null
	@cmake --build $(BUILD_FUZZ) -j$(JOBS)

fuzz: build-fuzz
	@FUZZ_RUNS=$(FUZZ_RUNS) tools/fuzz.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

test-fuzz: build-fuzz
	@tools/fuzz.sh $(BUILD_FUZZ) $(FUZZ_TEST_SECONDS)

# The GPU suites (label gpu) on the emulated CUDA device: the CUDA backend's own .cu sources built
# as host C++ against core/backend/cuda/emu/ (no GPU needed). Only the GPU suites and `unmix` are
# built there; tools/emu-test.sh fails if any GPU case is skipped. The plain run defers stream work
# until a synchronisation (a missing sync shows as stale data); the sanitizer run puts allocations
# left-aligned (an index below 0 hits the guard page; the plain run catches one past the end) and,
# like the CPU sanitizer pass, leaves out the whole-training suites (label slow).
test-emu: deps
	@cmake -S . -B $(BUILD_EMU) -DCMAKE_BUILD_TYPE=Release -DUNMIX_CUDA=EMU -DUNMIX_DIST=OFF >/dev/null
	@cmake --build $(BUILD_EMU) -j$(JOBS) --target unmix_gpu_suites
	EMU_STRICT_STREAMS=1 tools/emu-test.sh $(BUILD_EMU)

test-emu-asan: deps
	@cmake -S . -B $(BUILD_EMU_ASAN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUNMIX_SANITIZE=ON -DUNMIX_CUDA=EMU -DUNMIX_DIST=OFF >/dev/null
	@cmake --build $(BUILD_EMU_ASAN) -j$(JOBS) --target unmix_gpu_suites
	ASAN_OPTIONS=detect_leaks=0 UNMIX_SANITIZED=1 EMU_ALIGN=left tools/emu-test.sh $(BUILD_EMU_ASAN) -LE slow

test: test-fast test-asan test-emu test-emu-asan test-fuzz

# The demo needs only the `unmix` binary, not the test suites.
build-unmix: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target unmix

# MoCo vs MoCo + Un-Mix on the real Fashion-MNIST (configs/fmnist/), kNN, t-SNE, table, figures
# under results/demo/. Finished runs are re-used; an interrupted one resumes.
DEMO_OUT ?= results/demo
DEMO_TSNE_CMD ?= $(UNMIX) tsne {run}/checkpoint.safetensors --out {run} --n 1000
SEEDS ?= 1
DEMO_SET ?=
demo: build-unmix
	@UNMIX='$(UNMIX)' DEMO_OUT='$(DEMO_OUT)' TSNE_CMD='$(DEMO_TSNE_CMD)' SEEDS='$(SEEDS)' BACKEND='$(BACKEND)' \
	  DEMO_SET='$(DEMO_SET)' scripts/demo.sh

demo-clean:
	rm -rf $(DEMO_OUT)

# The Fashion-MNIST study (configs/fmnist/study/): the comparison on a fixed 8,000-image subset seen
# 6 times (28-px crops), STUDY_SEEDS seeds of each run (<= 1 h on 2 cores), no t-SNE.
STUDY_OUT ?= results/study-fmnist
STUDY_SEEDS ?= 3
study-fmnist: build-unmix
	@UNMIX='$(UNMIX)' DEMO_OUT='$(STUDY_OUT)' TSNE_CMD= SEEDS='$(STUDY_SEEDS)' BACKEND='$(BACKEND)' \
	  DEMO_SET='$(DEMO_SET)' DEMO_CONFIGS=configs/fmnist/study \
	  DEMO_TITLE='Study: MoCo vs MoCo + Un-Mix on Fashion-MNIST, longer training' scripts/demo.sh

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) $(BUILD_EMU) $(BUILD_EMU_ASAN)

include Makefile.paper
