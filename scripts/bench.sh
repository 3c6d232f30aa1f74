#!/usr/bin/env bash
# Benchmarks, all in one run on the same images (timing lives here, never in tests):
#   Pillow + transformers in-process | in-process C pipeline (tests/bench) | JPEG decode alone |
#   the daemon over HTTP (CPU executor, keep-alive clients).
# Usage: scripts/bench.sh [--seconds S] [--classes 640x480,1920x1080,4000x3000]
#        scripts/bench.sh --gpu   (CPU executor vs CUDA engine vs CUDA engine with the hybrid
#                                  JPEG decode, batch sizes 1..256, encoded bytes to tensor,
#                                  in-process; needs a GPU)
#        scripts/bench.sh --cache [--seconds S] [--classes ...]  (the content cache on vs off,
#                                  the same images repeated, over HTTP)
#        scripts/bench.sh --vlm  (vision-language profiles: the daemon's CPU-ms per image
#                                  against transformers 5's processors, both backends)
#        scripts/bench.sh --entropy  (what the hybrid JPEG decode leaves on the CPU: entropy
#                                  decoding + copy into staging, vs a full libjpeg decode, one
#                                  core; runs anywhere)
# Prints markdown tables (paste into docs/PERFORMANCE.md) and writes .bench/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s all venv >/dev/null
[[ -e .bench/astronaut_640x480.jpg ]] || .venv/bin/python scripts/bench_images.py .bench
if [[ ${1:-} == --gpu ]]; then
  for cls in 640x480 1920x1080 4000x3000; do
    echo "== $cls"
    ./bin/pipeline-bench --mode full --threads "$(nproc)" --seconds 3 .bench/*_"$cls".jpg
    for b in 1 8 32 128 256; do
      ./bin/pipeline-bench --mode cuda --batch "$b" --threads "$(nproc)" --seconds 3 .bench/*_"$cls".jpg
      ./bin/pipeline-bench --mode cuda-hybrid --batch "$b" --threads "$(nproc)" --seconds 3 .bench/*_"$cls".jpg
    done
  done
  exit 0
fi
if [[ ${1:-} == --vlm ]]; then
  shift
  make -s venv-ref >/dev/null
  exec .venv-ref/bin/python scripts/bench_vlm.py "$@"
fi
if [[ ${1:-} == --entropy ]]; then
  # one core, same images, same run: the CPU executor's whole per-image work (decode + exact
  # resize + normalise), a full libjpeg decode, and what the hybrid decode leaves on the CPU
  echo "| size | CPU pipeline CPU-ms/img | full decode | entropy only | entropy / decode | entropy / pipeline |"
  echo "|---|---|---|---|---|---|"
  ms() { sed -E 's/.*"cpu_ms_per_image":([0-9.]+).*/\1/'; }
  for cls in 640x480 1920x1080 4000x3000; do
    p=$(./bin/pipeline-bench --mode full --threads 1 --seconds 4 .bench/*_"$cls".jpg | ms)
    f=$(./bin/pipeline-bench --mode decode --threads 1 --seconds 4 .bench/*_"$cls".jpg | ms)
    e=$(./bin/pipeline-bench --mode entropy --threads 1 --seconds 4 .bench/*_"$cls".jpg | ms)
    awk -v c="$cls" -v p="$p" -v f="$f" -v e="$e" 'BEGIN {
      printf "| %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n", c, p, f, e, e / f, e / p }'
  done
  exit 0
fi
exec .venv/bin/python scripts/bench_http.py "$@"
