# clipprep — build, run and test. `make run` and `make test` do all set-up on a fresh machine.
# Without nvcc the CPU-only daemon is built; with nvcc, kernels/*.cu are compiled and the CUDA
# backend is linked in (CUDA=0 forces CPU-only, CUDA=1 requires nvcc).

CC      ?= gcc
NVCC    ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
ifeq ($(origin CUDA), undefined)
CUDA    := $(if $(NVCC),1,0)
endif
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_GENCODE ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
                -gencode arch=compute_90,code=compute_90

PKGS     := libmicrohttpd libjpeg libpng libwebp libwebpdemux libcjson
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=c11 -Wall -Wextra -Werror -pthread -fno-strict-aliasing
CPPFLAGS += -D_GNU_SOURCE -MMD -MP -Iserver -Ikernels $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -pthread
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
CPPFLAGS += -DCLIPPREP_VERSION=\"$(VERSION)\"

BUILD    := build/cuda$(CUDA)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
KERNEL_SRC := $(wildcard kernels/*.c)
LIB_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(SERVER_SRC) $(KERNEL_SRC))
ifeq ($(CUDA),1)
CPPFLAGS += -DCLIPPREP_WITH_CUDA=1
CU_SRC   := $(wildcard kernels/*.cu)
CU_OBJ   := $(patsubst %.cu,$(BUILD)/%.cu.o,$(CU_SRC))
LDLIBS   += -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/targets/x86_64-linux/lib -lcudart -lstdc++ \
            -Wl,-rpath,$(CUDA_HOME)/lib64
endif
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,bin/tests/%,$(UNIT_SRC))
VENV     := .venv
PY       := $(VENV)/bin/python

.PHONY: all deps run test unit venv test-http test-parity test-gpu clean bench
all: bin/clipprepd bin/pipeline-bench $(if $(filter 1,$(CUDA)),bin/tests/gpu_parity)

deps:
	bash scripts/install-deps.sh

# Coefficients must not use fused multiply-add (spec A.10).
$(BUILD)/kernels/coeffs.o: CFLAGS += -ffp-contract=off
$(BUILD)/kernels/normalize.o: CFLAGS += -ffp-contract=off

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) -std=c++17 -O2 --fmad=false -Xcompiler -Wall,-Werror -Iserver -Ikernels \
	    -DCLIPPREP_WITH_CUDA=1 $(CUDA_GENCODE) -c $< -o $@

$(BUILD)/libclipprep.a: $(LIB_OBJ) $(CU_OBJ)
	@rm -f $@
	ar rcs $@ $^

bin/clipprepd: $(BUILD)/server/main.o $(BUILD)/libclipprep.a
	@mkdir -p bin
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

bin/pipeline-bench: tests/bench/pipeline_bench.c $(BUILD)/libclipprep.a
	@mkdir -p bin
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(BUILD)/libclipprep.a -o $@ $(LDLIBS)

bin/tests/gpu_parity: tests/gpu/test_gpu_parity.c $(BUILD)/libclipprep.a
	@mkdir -p bin/tests
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(BUILD)/libclipprep.a -o $@ $(LDLIBS)

# GPU vs CPU bit-exactness; prints a SKIP line and passes where no GPU exists.
test-gpu: bin/tests/gpu_parity
	./bin/tests/gpu_parity

bin/tests/%: tests/unit/%.c $(BUILD)/libclipprep.a
	@mkdir -p bin/tests
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(BUILD)/libclipprep.a -o $@ $(LDLIBS)

run: deps bin/clipprepd
	./bin/clipprepd --config config/clipprep.json

venv: $(VENV)/.installed
$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r tests/requirements.txt
	touch $@

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || fail=1; done; exit $$fail

test-http: bin/clipprepd venv
	$(PY) -m pytest -q tests/http

test-parity: bin/clipprepd venv
	$(PY) -m pytest -q tests/parity

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(if $(filter 1,$(CUDA)),$(MAKE) test-gpu)
	$(MAKE) venv
	$(PY) -m pytest -q tests/http tests/parity

bench: bin/clipprepd venv
	bash scripts/bench.sh

clean:
	rm -rf $(BUILD) bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
