# Shoal: the two commands that matter are `make demo` and `make test` (see README.md).
#
#   make test                     install missing packages, build, run every test tier this
#                                 machine can run (unit; priv and e2e as root; vm with qemu)
#   make test SANITIZE=address    the same under AddressSanitizer (+ undefined, thread)
#   make demo                     build, then run a 3-host lab cluster serving a demo service
#   make lint                     clang-format and clang-tidy on changed files
#   make bench                    build the benchmarks and run the side-by-side comparisons
SHELL := /bin/bash
SANITIZE ?=
comma := ,
BUILD_DIR ?= $(if $(SANITIZE),build-$(subst $(comma),-,$(SANITIZE)),build)
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)
# Let ccache share objects between checkouts in different folders (CI clones elsewhere):
# paths under the checkout are hashed relative to it, and the working directory is not hashed.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all setup configure build test demo lint bench clean

all: build

setup:
	@scripts/setup

# Always re-run cmake: it is quick when nothing changed, and flags given on the command line
# (SANITIZE, CMAKE_FLAGS) then always take effect.
configure:
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DSHOAL_WERROR=ON -DSHOAL_BUILD_BENCH=ON \
	  -DSHOAL_SANITIZE="$(SANITIZE)" $(CMAKE_FLAGS) >/dev/null

build: setup configure
	ninja -C $(BUILD_DIR) -j $(JOBS)

test: build
	@scripts/run-tests $(BUILD_DIR)

demo: build
	@scripts/demo $(BUILD_DIR)

lint: configure
	@scripts/lint $(BUILD_DIR)

bench: build
	@scripts/run-bench $(BUILD_DIR)

clean:
	rm -rf build build-*
