#!/usr/bin/env bash
# One prepared run on a machine with an NVIDIA GPU (the device tool's H100/H200):
# build with the default CUDA_GENCODE (sm_75, sm_80, sm_90 + PTX: what ships), GPU tests (GPU
# output must equal CPU output bit for bit; the hybrid JPEG decode must equal its host twin and
# libjpeg), the parity test again under compute-sanitizer (memcheck, racecheck), the failure
# handling only a device can show (tests/gpu/test_gpu_faults.c: sticky vs non-sticky errors,
# region sizes, blocking sync, direct copies; docs/gpu.md), format=cuda_ipc and the daemon's
# GPU answers against its CPU backend, the Triton backend's KIND_GPU instances (mock Triton
# API, tests/triton/mock_triton.c), GPU benchmark (CPU executor vs CUDA engine vs CUDA
# engine with the hybrid decode, batch sizes 1..256, CPU-ms per image for each), full logs
# into OUTDIR, short table last. Exit status: non-zero if anything failed, and, on a machine
# with a GPU, if any GPU test skipped or could not run (CLIPPREP_GPU_REQUIRE=1 for the tests).
#   bash scripts/gpu-check.sh OUTDIR
# The device machine has no network: build dependencies come from the system or from a
# carried .deps/ folder made here with scripts/gpu-deps.sh (with compute-sanitizer's wheel,
# used when the device's toolkit has none); bench images from a carried .bench/ folder
# (scripts/gpu-deps.sh makes both). Exit status 3: no GPU here, nothing confirmed.
set -uo pipefail
out=${1:?usage: scripts/gpu-check.sh OUTDIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
summary=()
failed=0
note() { summary+=("$1"); echo "$1"; }
bad() { note "$1"; failed=1; }

if [[ -d .deps/root ]]; then
  r=$PWD/.deps/root
  export PKG_CONFIG_PATH="$r/usr/lib/x86_64-linux-gnu/pkgconfig:$r/usr/share/pkgconfig:${PKG_CONFIG_PATH:-}"
  export PKG_CONFIG_SYSROOT_DIR=$r
  export CPATH="$r/usr/include:$r/usr/include/x86_64-linux-gnu:${CPATH:-}"
  export LIBRARY_PATH="$r/usr/lib/x86_64-linux-gnu:${LIBRARY_PATH:-}"
  export LD_LIBRARY_PATH="$r/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
fi

{ date -u; uname -a; nvidia-smi; nvcc --version; } >"$out/machine.txt" 2>&1
card=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
note "card: ${card:-unknown}; date: $(date -u +%F)"
if nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  export CLIPPREP_GPU_REQUIRE=1 # a device is here: a GPU test that skips is a failure
fi

B=build/gpu
if make -j"$(nproc)" CUDA=1 BUILD=$B BIN=$B/bin $B/bin/clipprepd \
     $B/bin/pipeline-bench $B/bin/tests/gpu_parity $B/bin/tests/gpu_faults \
     $B/bin/tests/test_batch_twin $B/bin/tests/test_batch_bounds $B/bin/tests/test_hybrid_decode \
     $B/bin/tests/ipc_reader $B/bin/tests/ipc_owner >"$out/build.log" 2>&1; then
  note "build (default CUDA_GENCODE: sm_75, sm_80, sm_90, compute_90 PTX): ok"
else
  bad "build: FAILED (see build.log)"; tail -30 "$out/build.log"; printf '%s\n' "${summary[@]}"; exit 1
fi

$B/bin/tests/test_batch_twin >"$out/twin.log" 2>&1 && note "host twin = CPU loops: ok" || bad "host twin: FAILED"
$B/bin/tests/test_batch_bounds >"$out/bounds.log" 2>&1 && note "per-image launch bounds: ok" || bad "per-image launch bounds: FAILED"
$B/bin/tests/test_hybrid_decode >"$out/hybrid-twin.log" 2>&1 \
  && note "hybrid decode host twin = libjpeg: $(grep -m1 'files:' "$out/hybrid-twin.log" | sed 's/^ *//')" \
  || bad "hybrid decode host twin: FAILED (hybrid-twin.log)"
# gpu_parity and gpu_faults print SKIP/FAIL on their first line without a device
if $B/bin/tests/gpu_parity >"$out/gpu-tests.log" 2>&1 && ! grep -q '^SKIP' "$out/gpu-tests.log"; then
  note "GPU = CPU bit-for-bit: $(tail -1 "$out/gpu-tests.log")"
else
  bad "GPU tests: FAILED or skipped: $(tail -3 "$out/gpu-tests.log" | tr '\n' ' ')"
fi
if $B/bin/tests/gpu_faults >"$out/gpu-faults.log" 2>&1 && ! grep -q '^SKIP' "$out/gpu-faults.log"; then
  note "GPU failure handling (sticky/non-sticky, region sizes, blocking sync, direct copies): $(tail -1 "$out/gpu-faults.log")"
else
  bad "GPU failure tests: FAILED or skipped: $(tail -3 "$out/gpu-faults.log" | tr '\n' ' ')"
fi

# The Triton backend's KIND_GPU instances (real CUDA build) under the mock Triton API:
# outputs in cudaMalloc'd memory equal KIND_CPU's bit for bit, read back when each response
# is sent (tests/triton/mock_triton.c; the fault cases need the emulation and are not run).
if make -j"$(nproc)" CUDA=1 triton-backend bin/tests/mock_triton_cuda >"$out/triton-build.log" 2>&1 &&
   ./bin/tests/mock_triton_cuda "$PWD/bin/triton/clipprep/libtriton_clipprep.so" \
     tests/fuzz/corpus/decode >"$out/triton-gpu.log" 2>&1 && ! grep -q '^SKIP' "$out/triton-gpu.log"; then
  note "Triton backend KIND_GPU = KIND_CPU (mock Triton, device memory): $(tail -1 "$out/triton-gpu.log")"
else
  bad "Triton backend KIND_GPU: FAILED or skipped: $(tail -3 "$out/triton-gpu.log" "$out/triton-build.log" 2>/dev/null | tr '\n' ' ')"
fi

# The kernels under compute-sanitizer (a smaller parity set: it slows kernels ~100x).
san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer \
      /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null | head -1)
whl=$(ls .deps/wheels/nvidia_cuda_sanitizer_api-*.whl 2>/dev/null | head -1)
if [[ -z $san && -n $whl ]]; then # NVIDIA's wheel, carried from gpu-deps.sh
  python3 -m zipfile -e "$whl" build/sanitizer >/dev/null 2>&1
  san=$(ls build/sanitizer/nvidia/cu*/bin/compute-sanitizer 2>/dev/null | head -1)
  [[ -n $san ]] && chmod +x "$san" && export LD_LIBRARY_PATH="$(dirname "$san")/../lib:${LD_LIBRARY_PATH:-}"
fi
if [[ -z $san ]]; then
  bad "compute-sanitizer: not found (it ships with the CUDA toolkit): memcheck/racecheck NOT run"
else
  for tool in memcheck racecheck; do
    if CLIPPREP_GPU_PARITY_QUICK=1 timeout 150 "$san" --tool "$tool" --error-exitcode 99 \
         --print-limit 20 $B/bin/tests/gpu_parity >"$out/sanitizer-$tool.log" 2>&1 \
       && ! grep -q '^SKIP' "$out/sanitizer-$tool.log"; then
      note "compute-sanitizer $tool on the parity test: clean ($(grep -m1 -o 'ERROR SUMMARY: [0-9]* errors\|RACECHECK SUMMARY: [0-9]* hazards[^)]*' "$out/sanitizer-$tool.log" | head -1))"
    else
      bad "compute-sanitizer $tool: FAILED (status $?; sanitizer-$tool.log): $(grep -m3 'ERROR\|SUMMARY\|FAIL' "$out/sanitizer-$tool.log" | tr '\n' ' ')"
    fi
  done
fi

img=.bench/astronaut_640x480.jpg
if [[ -e $img ]]; then
  if bash tests/gpu/test_cuda_ipc.sh "$B/bin" "$img" >"$out/cuda-ipc.log" 2>&1; then
    note "daemon on the GPU = CPU backend; cuda_ipc read by a second process; region size check: $(tail -1 "$out/cuda-ipc.log")"
  else
    bad "cuda_ipc / daemon test: FAILED: $(grep FAIL "$out/cuda-ipc.log" | head -3 | tr '\n' ' ')"
  fi
else
  bad "cuda_ipc / daemon test: NOT run: no $img (run scripts/gpu-deps.sh here first and carry .bench)"
fi

imgs=(.bench/*.jpg)
if [[ ! -e ${imgs[0]} ]]; then
  bad "bench: NOT run: no images in .bench/ (run scripts/gpu-deps.sh here first)"
else
  threads=$(nproc)
  for cls in 640x480 1920x1080 4000x3000; do
    set -- .bench/*_"$cls".jpg
    [[ -e $1 ]] || continue
    cpu=$($B/bin/pipeline-bench --mode full --threads "$threads" --seconds 3 "$@" 2>>"$out/bench.err")
    echo "$cpu" >>"$out/bench.jsonl"
    line="$cls cpu($threads thr): $(sed -E 's/.*"cpu_ms_per_image":([0-9.]+).*"images_per_s":([0-9.]+).*/\2 img\/s, \1 CPU-ms\/img/' <<<"$cpu")"
    ent=$($B/bin/pipeline-bench --mode entropy --threads "$threads" --seconds 3 "$@" 2>>"$out/bench.err")
    echo "$ent" >>"$out/bench.jsonl"
    line+=" | entropy only: $(sed -E 's/.*"cpu_ms_per_image":([0-9.]+).*/\1 CPU-ms\/img/' <<<"$ent")"
    for run in cuda:1 cuda:32 cuda:128 cuda:256 cuda-hybrid:1 cuda-hybrid:32 cuda-hybrid:128 cuda-hybrid:256; do
      m=${run%%:*} b=${run##*:}
      g=$($B/bin/pipeline-bench --mode "$m" --batch "$b" --threads "$threads" --seconds 3 "$@" 2>>"$out/bench.err")
      echo "$g" >>"$out/bench.jsonl"
      if [[ -z $g ]]; then line+=" | $m b$b: failed (bench.err)"; failed=1; continue; fi
      line+=" | $m b$b: $(sed -E 's/.*"cpu_ms_per_image":([0-9.]+).*"images_per_s":([0-9.]+).*/\2 img\/s, \1 CPU-ms/' <<<"$g")"
    done
    note "$line"
  done
fi

echo
echo "== summary"
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
if [[ -z ${CLIPPREP_GPU_REQUIRE:-} ]]; then
  echo "gpu-check: no GPU on this machine: nothing GPU-side was confirmed"; exit 3
fi
[[ $failed -eq 0 ]] && echo "gpu-check: all passed" || echo "gpu-check: FAILED (see above)"
exit $failed
