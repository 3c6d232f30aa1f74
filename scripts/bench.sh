#!/usr/bin/env bash
# Benchmarks, all in one run on the same images (timing lives here, never in tests):
#   Pillow + transformers in-process | in-process C pipeline (tests/bench) | JPEG decode alone |
#   the daemon over HTTP (CPU executor, keep-alive clients).
# Usage: scripts/bench.sh [--seconds S] [--classes 640x480,1920x1080,4000x3000]
# Prints a markdown table (paste into docs/PERFORMANCE.md) and writes .bench/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s all venv >/dev/null
[[ -e .bench/astronaut_640x480.jpg ]] || .venv/bin/python scripts/bench_images.py .bench
exec .venv/bin/python scripts/bench_http.py "$@"
