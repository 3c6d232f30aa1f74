# clipprep — build, run and test. `make run` and `make test` do all set-up on a fresh machine.
# Without nvcc the CPU-only daemon is built; with nvcc, kernels/*.cu are compiled and the CUDA
# backend is linked in (CUDA=0 forces CPU-only).

CC      ?= gcc
NVCC    ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
ifeq ($(origin CUDA), undefined)
CUDA    := $(if $(NVCC),1,0)
endif
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
# Machine code for T4 (sm_75), A100 (sm_80), H100/H200 (sm_90), and PTX that newer GPUs JIT;
# at start every kernel is checked on every used GPU (a GPU without an image: CPU fallback).
CUDA_GENCODE ?= -gencode arch=compute_75,code=sm_75 -gencode arch=compute_80,code=sm_80 \
                -gencode arch=compute_90,code=sm_90 \
                -gencode arch=compute_90,code=compute_90

PKGS     := libmicrohttpd libjpeg libpng libdeflate libwebp libwebpdemux libcjson libcurl libxxhash libgif libtiff-4 libavif libde265
OPT      ?= -O2
SAN      ?=
CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=c11 -Wall -Wextra -Werror -pthread -fno-strict-aliasing $(SAN)
CPPFLAGS += -D_GNU_SOURCE -Iserver -Ikernels $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -pthread
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
CPPFLAGS += -DCLIPPREP_VERSION=\"$(VERSION)\" $(EXTRA_CPPFLAGS)

BUILD    ?= build/cuda$(CUDA)
BIN      ?= bin
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c server/vlm/*.c))
KERNEL_SRC := $(wildcard kernels/*.c)
LIB_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(SERVER_SRC) $(KERNEL_SRC))
ifeq ($(CUDA),1)
CPPFLAGS += -DCLIPPREP_WITH_CUDA=1
CU_OBJ   := $(patsubst %.cu,$(BUILD)/%.cu.o,$(wildcard kernels/*.cu))
LDLIBS   += -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/targets/x86_64-linux/lib -lcudart -lstdc++ \
            -Wl,-rpath,$(CUDA_HOME)/lib64
endif
LIB      := $(BUILD)/libclipprep.a
UNIT_BIN := $(patsubst tests/unit/%.c,$(BIN)/tests/%,$(wildcard tests/unit/test_*.c))
FUZZ_TARGETS := decode multipart config kserve geometry shm_regions json_input
VENV     := .venv
PY       := $(VENV)/bin/python
PYTEST   := $(PY) -m pytest -q -p no:cacheprovider
VENV_REF := .venv-ref
PYTEST_REF := $(VENV_REF)/bin/python -m pytest -q -p no:cacheprovider
VENV_TRITON := .venv-triton
PYTEST_TRITON := $(VENV_TRITON)/bin/python -m pytest -q -p no:cacheprovider

.PHONY: all deps run test unit venv venv-ref venv-triton triton-backend triton-backend-emu \
        test-triton-mock test-triton-mock-asan test-triton-gpu test-triton test-reference test-http test-parity test-gpu test-asan test-emu fuzz \
        fuzz-replay bench clean test-container
all: $(BIN)/clipprepd $(BIN)/pipeline-bench \
     $(if $(filter 1,$(CUDA)),$(BIN)/tests/gpu_parity $(BIN)/tests/gpu_faults $(BIN)/tests/ipc_reader \
                              $(BIN)/tests/ipc_owner)

deps:
	bash scripts/install-deps.sh

# Coefficients and tables must not use fused multiply-add (spec A.10).
$(BUILD)/kernels/coeffs.o $(BUILD)/kernels/normalize.o $(BUILD)/server/native_mode.o \
$(BUILD)/server/decode_heif.o: CFLAGS += -ffp-contract=off

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -MMD -MP $(CFLAGS) -c $< -o $@

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) -std=c++17 -O2 --fmad=false -Xcompiler -Wall,-Werror -Iserver -Ikernels -MMD -MP \
	    -DCLIPPREP_WITH_CUDA=1 $(CUDA_GENCODE) $(NVCC_EXTRA) -c $< -o $@

$(LIB): $(LIB_OBJ) $(CU_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/clipprepd: $(BUILD)/server/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BIN)/pipeline-bench: tests/bench/pipeline_bench.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(LIB) -o $@ $(LDLIBS)

$(BIN)/tests/gpu_parity: tests/gpu/test_gpu_parity.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(LIB) -o $@ $(LDLIBS)

# GPU failure handling on a device (docs/gpu.md); its faulting kernel needs nvcc.
$(BIN)/tests/gpu_faults: tests/gpu/test_gpu_faults.c $(BUILD)/tests/gpu/fault_kernel.cu.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BIN)/tests/ipc_reader $(BIN)/tests/ipc_owner: $(BIN)/tests/ipc_%: tests/gpu/ipc_%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(CUDA_HOME)/include $< -o $@ -L$(CUDA_HOME)/lib64 -lcudart \
	    -Wl,-rpath,$(CUDA_HOME)/lib64

$(BIN)/tests/%: tests/unit/%.c tests/unit/*.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(LIB) -o $@ $(LDLIBS)

$(BIN)/tests/replay-%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $^ -o $@ $(LDLIBS)

run: deps $(BIN)/clipprepd
	./$(BIN)/clipprepd --config config/clipprep.json

venv: $(VENV)/.installed
$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r tests/requirements.txt
	touch $@

# transformers 5 + torch/torchvision + open_clip (tests/requirements-ref.txt): tests/reference.
venv-ref: $(VENV_REF)/.installed
$(VENV_REF)/.installed: tests/requirements-ref.txt
	python3 -m venv $(VENV_REF)
	$(VENV_REF)/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements-ref.txt
	touch $@

# A real tritonserver 2.51 with its Python backend (nvidia-pytriton), tritonclient[http,grpc],
# numpy < 2 for Python-backend models (tests/requirements-triton.txt): tests/triton.
venv-triton: $(VENV_TRITON)/.installed
$(VENV_TRITON)/.installed: tests/requirements-triton.txt
	bash scripts/install-deps.sh --triton-tests
	python3 -m venv $(VENV_TRITON)
	$(VENV_TRITON)/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements-triton.txt
	touch $@

# libtriton_clipprep.so (triton/): the engine as a Triton backend, in Triton's backend layout
# with the profiles next to it. The engine is linked in statically, built position-independent;
# only the TRITONBACKEND_* entry points are exported (triton/exports.map). With nvcc the CUDA
# executor is in (KIND_GPU instances; it then needs this toolkit's libcudart at run time: build
# it with the CUDA version of the Triton image); TRITON_CUDA=0 builds the CPU path only.
TRITON_LIB := $(BIN)/triton/clipprep/libtriton_clipprep.so
TRITON_CUDA ?= $(CUDA)
triton-backend:
	$(MAKE) CUDA=$(TRITON_CUDA) BUILD=build/triton-cuda$(TRITON_CUDA) SAN=-fPIC \
	    NVCC_EXTRA="-Xcompiler -fPIC" $(TRITON_LIB)
$(TRITON_LIB): $(wildcard triton/*.c triton/*.h) triton/exports.map $(LIB) $(wildcard config/profiles/*.json)
	@mkdir -p $(dir $@)profiles
	$(CC) $(CPPFLAGS) $(CFLAGS) -shared $(filter %.c,$^) $(LIB) -o $@ $(LDLIBS) \
	    -Wl,--version-script=triton/exports.map
	rm -f $(dir $@)profiles/*.json && cp config/profiles/*.json $(dir $@)profiles/

# The backend built on the emulated CUDA engine (kernels/engine_emu.c, as `make test-emu`), for
# tests/triton/mock_triton.c: KIND_GPU instances without a GPU (real Triton refuses KIND_GPU
# where there is none).
TRITON_EMU_LIB := build/triton-emu/bin/triton/clipprep/libtriton_clipprep.so
triton-backend-emu:
	$(MAKE) CUDA=0 BUILD=build/triton-emu BIN=build/triton-emu/bin SAN=-fPIC \
	    EXTRA_CPPFLAGS="-DCLIPPREP_WITH_CUDA=1 -DCLIPPREP_CUDA_EMULATION=1" $(TRITON_EMU_LIB)

# A mock of the Triton server API (the functions the backend calls) that loads a backend
# library: KIND_GPU vs KIND_CPU bit-exactness, outputs in "device" memory, per-request
# failures, injected CUDA faults (CLIPPREP_EMU_FAULTS, one child process per case).
$(BIN)/tests/mock_triton: tests/triton/mock_triton.c triton/triton_api.h tests/unit/jpeg_encoder.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -rdynamic $< -o $@ -ljpeg -ldl -pthread

# The same harness on a real GPU against the real CUDA build (`make triton-backend`): device
# memory from cudaMalloc, read back when the response is sent; prints SKIP and passes without
# a device (CLIPPREP_GPU_REQUIRE=1 makes that a failure: scripts/gpu-check.sh). Part of test-gpu.
$(BIN)/tests/mock_triton_cuda: tests/triton/mock_triton.c triton/triton_api.h tests/unit/jpeg_encoder.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -DMOCK_TRITON_CUDA -I$(CUDA_HOME)/include -rdynamic $< -o $@ \
	    -ljpeg -ldl -pthread -L$(CUDA_HOME)/lib64 -lcudart -Wl,-rpath,$(CUDA_HOME)/lib64

test-triton-gpu: triton-backend $(BIN)/tests/mock_triton_cuda
	./$(BIN)/tests/mock_triton_cuda $(CURDIR)/$(TRITON_LIB) tests/fuzz/corpus/decode

test-triton-mock: triton-backend-emu $(BIN)/tests/mock_triton
	./$(BIN)/tests/mock_triton $(CURDIR)/$(TRITON_EMU_LIB) tests/fuzz/corpus/decode

# The same under ASan + UBSan + LeakSanitizer (each case's child process checks for leaks at
# exit): part of `make test-asan`.
TRITON_EMU_ASAN := build/triton-emu-asan/bin
test-triton-mock-asan:
	$(MAKE) CUDA=0 BUILD=build/triton-emu-asan BIN=$(TRITON_EMU_ASAN) OPT=-O1 \
	    SAN="-fPIC -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    EXTRA_CPPFLAGS="-DCLIPPREP_WITH_CUDA=1 -DCLIPPREP_CUDA_EMULATION=1" \
	    $(TRITON_EMU_ASAN)/triton/clipprep/libtriton_clipprep.so $(TRITON_EMU_ASAN)/tests/mock_triton
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 $(TRITON_EMU_ASAN)/tests/mock_triton \
	    $(CURDIR)/$(TRITON_EMU_ASAN)/triton/clipprep/libtriton_clipprep.so tests/fuzz/corpus/decode

# The sidecar flow and the backend in a real tritonserver (tests/triton).
test-triton: all triton-backend venv-triton
	$(PYTEST_TRITON) tests/triton --daemon-bin $(abspath $(BIN))/clipprepd

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || fail=1; done; exit $$fail

# Seed corpora and past fuzz findings, replayed as regression tests.
fuzz-replay: $(patsubst %,$(BIN)/tests/replay-%,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do $(BIN)/tests/replay-$$t tests/fuzz/corpus/$$t/* || exit 1; done

# GPU vs CPU bit-exactness and GPU failure handling; print a SKIP line and pass where no GPU
# exists (CLIPPREP_GPU_REQUIRE=1 makes that a failure: scripts/gpu-check.sh).
test-gpu: $(BIN)/tests/gpu_parity $(BIN)/tests/gpu_faults
	./$(BIN)/tests/gpu_parity
	./$(BIN)/tests/gpu_faults
	$(MAKE) test-triton-gpu

test-http: all venv
	$(PYTEST) tests/http --daemon-bin $(abspath $(BIN))/clipprepd

test-parity: all venv
	$(PYTEST) tests/parity --daemon-bin $(abspath $(BIN))/clipprepd

# Every reference (transformers 5 torchvision/Pillow backends, open_clip) against the daemon.
test-reference: all venv-ref
	$(PYTEST_REF) tests/reference --daemon-bin $(abspath $(BIN))/clipprepd

test: deps
	$(MAKE) all
	$(MAKE) unit fuzz-replay test-triton-mock
	$(if $(filter 1,$(CUDA)),$(MAKE) test-gpu)
	$(MAKE) venv venv-ref
	$(PYTEST) tests/http tests/parity
	$(PYTEST_REF) tests/reference
	$(MAKE) test-triton
	$(MAKE) test-emu
	$(MAKE) test-asan

# The image (Dockerfile) built and checked with podman: non-root, /healthz, same tensors as
# bin/clipprepd, shm read from a second container, SIGTERM drain. Prints why and passes where
# podman cannot run (CONTAINER_TEST_REQUIRE=1 makes that an error).
test-container: all
	bash scripts/test-container.sh

# The CUDA executor (server/exec_cuda.c) on a host emulation of the CUDA engine
# (kernels/engine_emu.c: separate "device" buffers, the kernels' host twins), so that its
# batching, uploads, hybrid JPEG decode routing and guard fallback run end to end on any
# machine: the HTTP and parity suites against that daemon with --backend cuda.
EMU_FLAGS := CUDA=0 BUILD=build/emu BIN=build/emu/bin \
             EXTRA_CPPFLAGS="-DCLIPPREP_WITH_CUDA=1 -DCLIPPREP_CUDA_EMULATION=1"
test-emu: deps venv venv-ref
	$(MAKE) $(EMU_FLAGS) build/emu/bin/clipprepd build/emu/bin/tests/test_hybrid_decode
	$(PYTEST) tests/http tests/parity --daemon-bin $(CURDIR)/build/emu/bin/clipprepd \
	    --daemon-backend cuda
	$(PYTEST_REF) tests/reference --daemon-bin $(CURDIR)/build/emu/bin/clipprepd \
	    --daemon-backend cuda

# The unit tests, the fuzz corpora, the Triton mock and the HTTP suite again under AddressSanitizer,
# UndefinedBehaviorSanitizer and LeakSanitizer (CPU-only build).
ASAN_FLAGS := CUDA=0 BUILD=build/asan BIN=build/asan/bin OPT=-O1 \
              SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
test-asan: deps venv
	$(MAKE) $(ASAN_FLAGS) all unit fuzz-replay
	$(MAKE) test-triton-mock-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 $(PYTEST) tests/http --daemon-bin $(CURDIR)/build/asan/bin/clipprepd

# libFuzzer (clang) for FUZZ_SECONDS per target; new crashes land in tests/fuzz/findings/
# (copy each into tests/fuzz/corpus/TARGET/ once fixed: it then runs in every `make test`).
FUZZ_SECONDS ?= 60
fuzz: deps
	@command -v clang >/dev/null || { echo "make fuzz needs clang (apt-get install clang)"; exit 1; }
	$(MAKE) CC=clang CUDA=0 BUILD=build/fuzz BIN=build/fuzz/bin OPT=-O1 \
	    SAN="-fsanitize=fuzzer-no-link,address,undefined" build/fuzz/libclipprep.a
	@mkdir -p tests/fuzz/findings build/fuzz/work build/fuzz/bin
	@for t in $(FUZZ_TARGETS); do \
	  clang $(CPPFLAGS) -g -O1 -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_$$t.c \
	    build/fuzz/libclipprep.a -o build/fuzz/bin/fuzz-$$t $(LDLIBS) || exit 1; \
	  mkdir -p build/fuzz/work/$$t; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS)s"; \
	  build/fuzz/bin/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	    -artifact_prefix=tests/fuzz/findings/$$t- build/fuzz/work/$$t tests/fuzz/corpus/$$t \
	    2>&1 | tail -3 || exit 1; \
	done

bench: all venv
	bash scripts/bench.sh

clean:
	rm -rf build bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
