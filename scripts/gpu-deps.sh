#!/usr/bin/env bash
# Prepares what scripts/gpu-check.sh needs on the device machine, which has no network:
# .deps/root (the -dev packages unpacked) and .bench/ (JPEGs of three size classes).
# Run here, then pass carry: [".deps", ".bench"] to the device tool.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps/debs .deps/root
(cd .deps/debs && apt-get download libmicrohttpd-dev libmicrohttpd12 libcjson-dev libcjson1 \
   libwebp-dev libwebp7 libwebpdemux2 libwebpmux3 libjpeg62-turbo-dev libjpeg62-turbo \
   libpng-dev libpng16-16 libgnutls30 libsharpyuv0 2>/dev/null || true)
for f in .deps/debs/*.deb; do dpkg -x "$f" .deps/root; done
make venv >/dev/null
.venv/bin/python scripts/bench_images.py .bench
du -sh .deps .bench
