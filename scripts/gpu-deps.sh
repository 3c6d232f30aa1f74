#!/usr/bin/env bash
# Prepares what scripts/gpu-check.sh needs on the device machine, which has no network:
# .deps/root (the -dev packages unpacked), .deps/wheels/ (NVIDIA's compute-sanitizer wheel for
# this nvcc's CUDA version, unpacked there by gpu-check.sh when the device's toolkit lacks it)
# and .bench/ (JPEGs of three size classes).
# Run here, then pass carry: [".deps", ".bench"] to the device tool.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps/debs .deps/root
(cd .deps/debs && apt-get download libmicrohttpd-dev libmicrohttpd12 libcjson-dev libcjson1 \
   libwebp-dev libwebp7 libwebpdemux2 libwebpmux3 libjpeg62-turbo-dev libjpeg62-turbo \
   libpng-dev libpng16-16 libgnutls30 libsharpyuv0 2>/dev/null || true)
for f in .deps/debs/*.deb; do dpkg -x "$f" .deps/root; done
cuda=$(nvcc --version 2>/dev/null | sed -nE 's/.*release ([0-9]+\.[0-9]+).*/\1/p')
if [[ -n $cuda ]]; then
  make venv >/dev/null
  mkdir -p .deps/wheels
  .venv/bin/pip download -q --no-deps -d .deps/wheels "nvidia-cuda-sanitizer-api==$cuda.*" \
    || echo "compute-sanitizer wheel for CUDA $cuda not downloaded: gpu-check.sh needs the device's own"
fi
make venv >/dev/null
.venv/bin/python scripts/bench_images.py .bench
du -sh .deps .bench
