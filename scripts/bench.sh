#!/usr/bin/env bash
# Benchmarks, all in one run on the same images (timing lives here, never in tests):
#   Pillow + transformers in-process | in-process C pipeline (tests/bench) | JPEG decode alone |
#   the daemon over HTTP (CPU executor, keep-alive clients).
# Usage: scripts/bench.sh [--seconds S] [--classes 640x480,1920x1080,4000x3000]
#        scripts/bench.sh --gpu   (CPU executor vs CUDA engine, batch sizes 1..256, encoded
#                                  bytes to tensor, in-process; needs a GPU)
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
    done
  done
  exit 0
fi
exec .venv/bin/python scripts/bench_http.py "$@"
