#!/usr/bin/env bash
# One prepared run on a machine with an NVIDIA GPU (the device tool's H100/H200):
# build for sm_90, GPU tests (GPU output must equal CPU output bit for bit; the hybrid JPEG
# decode must equal its host twin and libjpeg), GPU benchmark (CPU executor vs CUDA engine vs
# CUDA engine with the hybrid decode, batch sizes 1..256, CPU-ms per image for each), full logs
# into OUTDIR, short table last.
#   bash scripts/gpu-check.sh OUTDIR
# The device machine has no network: build dependencies come from the system or from a
# carried .deps/ folder made here with scripts/gpu-deps.sh; bench images from a carried
# .bench/ folder (scripts/gpu-deps.sh makes both).
set -uo pipefail
out=${1:?usage: scripts/gpu-check.sh OUTDIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
summary=()
note() { summary+=("$1"); echo "$1"; }

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

B=build/gpu
if make -j"$(nproc)" CUDA=1 CUDA_GENCODE="-arch=sm_90" BUILD=$B BIN=$B/bin $B/bin/clipprepd \
     $B/bin/pipeline-bench $B/bin/tests/gpu_parity $B/bin/tests/test_batch_twin \
     $B/bin/tests/test_hybrid_decode \
     $B/bin/tests/ipc_reader $B/bin/tests/ipc_owner >"$out/build.log" 2>&1; then
  note "build (sm_90): ok"
else
  note "build (sm_90): FAILED (see build.log)"; tail -30 "$out/build.log"; printf '%s\n' "${summary[@]}"; exit 1
fi

$B/bin/tests/test_batch_twin >"$out/twin.log" 2>&1 && note "host twin = CPU loops: ok" || note "host twin: FAILED"
$B/bin/tests/test_hybrid_decode >"$out/hybrid-twin.log" 2>&1 \
  && note "hybrid decode host twin = libjpeg: $(grep -m1 'files:' "$out/hybrid-twin.log" | sed 's/^ *//')" \
  || note "hybrid decode host twin: FAILED (hybrid-twin.log)"
if $B/bin/tests/gpu_parity >"$out/gpu-tests.log" 2>&1; then
  note "GPU = CPU bit-for-bit: $(tail -1 "$out/gpu-tests.log")"
else
  note "GPU tests: FAILED: $(tail -3 "$out/gpu-tests.log" | tr '\n' ' ')"
fi

if [[ -e .bench/astronaut_640x480.jpg ]]; then
  if bash tests/gpu/test_cuda_ipc.sh "$B/bin" .bench/astronaut_640x480.jpg >"$out/cuda-ipc.log" 2>&1; then
    note "cuda_ipc read by a second process = format=raw: $(tail -1 "$out/cuda-ipc.log")"
  else
    note "cuda_ipc test: FAILED: $(tail -3 "$out/cuda-ipc.log" | tr '\n' ' ')"
  fi
fi

imgs=(.bench/*.jpg)
if [[ ! -e ${imgs[0]} ]]; then
  note "bench: no images in .bench/ (run scripts/gpu-deps.sh here first)"
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
      if [[ -z $g ]]; then line+=" | $m b$b: failed (bench.err)"; continue; fi
      line+=" | $m b$b: $(sed -E 's/.*"cpu_ms_per_image":([0-9.]+).*"images_per_s":([0-9.]+).*/\2 img\/s, \1 CPU-ms/' <<<"$g")"
    done
    note "$line"
  done
fi

echo
echo "== summary"
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
