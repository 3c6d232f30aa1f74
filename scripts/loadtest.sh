#!/usr/bin/env bash
# Sustained load with wrk (keep-alive connections, one JPEG posted again and again) against a
# daemon it starts on a free port; prints wrk's latency distribution and the daemon's CPU-ms
# per image. Load only ever goes to 127.0.0.1 and stops after the given duration.
#   scripts/loadtest.sh [IMAGE.jpg] [DURATION_S=20] [CONNECTIONS=4] [PROFILE=clip-224]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo; $sudo apt-get install -y -qq wrk; }
make -s all
img=${1:-.bench/astronaut_1920x1080.jpg}
dur=${2:-20}; conns=${3:-4}; profile=${4:-clip-224}
[[ -f $img ]] || { make -s venv && .venv/bin/python scripts/bench_images.py .bench >/dev/null; }
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
cat >"$work/cfg.json" <<JSON
{"profiles_dir": "$PWD/config/profiles", "port": 0, "backend": "cpu", "log_level": "warn"}
JSON
./bin/clipprepd --config "$work/cfg.json" --log-level info 2>"$work/log" & pid=$!
for _ in $(seq 100); do grep -q '"listening"' "$work/log" && break; sleep 0.1; done
port=$(grep -o '"port":[0-9]*' "$work/log" | head -1 | cut -d: -f2)
cat >"$work/post.lua" <<LUA
local f = io.open("$img", "rb"); local body = f:read("*all"); f:close()
wrk.method = "POST"; wrk.body = body
wrk.headers["Content-Type"] = "application/octet-stream"
LUA
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
c0=$(cpu)
wrk -t2 -c"$conns" -d"${dur}s" --latency -s "$work/post.lua" \
    "http://127.0.0.1:$port/v1/preprocess?profile=$profile&format=raw" | tee "$work/wrk.txt"
c1=$(cpu)
reqs=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
awk -v c="$((c1 - c0))" -v t="$ticks" -v n="$reqs" \
    'BEGIN { printf "daemon CPU: %.2f ms per image over %d images\n", 1000 * c / t / n, n }'
