#!/usr/bin/env bash
# Container test: builds the image with podman (rootful, chroot isolation, runc) on a Debian
# bookworm base made locally with debootstrap, then checks it:
#   1. the image builds from a clean copy of the source; its size is printed
#   2. the container runs as non-root and answers /healthz (and its HEALTHCHECK passes)
#   3. a posted JPEG gives exactly the bytes the host build (bin/clipprepd) gives (format=raw)
#   4. a second container sharing the IPC namespace (--ipc container:NAME) reads the
#      format=shm result from /dev/shm and it equals the format=raw answer (sha256)
#   5. `podman stop` (SIGTERM) during a large request: the request completes with 200 and the
#      container exits 0
# Each check prints PASS or FAIL; the last line is "N passed, N failed".
#
# Where podman cannot be used (not root and no sudo, install fails, no namespaces, offline)
# the script says why and exits 0, unless CONTAINER_TEST_REQUIRE=1: then it exits 1.
#
# Environment:
#   CONTAINER_TEST_REQUIRE=1   a skip is an error
#   CONTAINER_TEST_SOURCE=worktree (default) build from the working tree's files as git sees
#                                  them (tracked + untracked, not ignored: no bin/, build/,
#                                  .venv/), uncommitted edits included
#                     =head        build from `git archive HEAD`
#   CONTAINER_TEST_KEEP=1          keep the test image (localhost/clipprep:test) afterwards
#   CONTAINER_TEST_NETWORK=host    skip the bridge network (used anyway when it fails here)
#
# All traffic goes to 127.0.0.1: the container's port is published on 127.0.0.1 only (or, if
# bridge networking does not work here, it shares the host network and listens on 127.0.0.1).
# The debootstrap base (localhost/debian:bookworm) is cached in podman's store and reused.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
git() { command git -c safe.directory="$ROOT" "$@"; }  # the checkout may be another user's (sudo)

REQUIRE=${CONTAINER_TEST_REQUIRE:-0}
SOURCE=${CONTAINER_TEST_SOURCE:-worktree}
BASE_IMAGE=localhost/debian:bookworm
IMAGE=localhost/clipprep:test
NAME=clipprep-ctest-$$
T0=$SECONDS
passed=0
failed=0

log()  { printf '[%4ss] %s\n' "$((SECONDS - T0))" "$*"; }
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
skip() {
  echo "SKIP container test: $*"
  echo "0 passed, 0 failed (skipped)"
  if [[ $REQUIRE == 1 ]]; then echo "CONTAINER_TEST_REQUIRE=1: a skip is an error"; exit 1; fi
  exit 0
}

# ------------------------------------------------------------------ root, podman, base image
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    log "not root: re-running under sudo"
    exec sudo -n CONTAINER_TEST_REQUIRE="$REQUIRE" CONTAINER_TEST_SOURCE="$SOURCE" \
      CONTAINER_TEST_KEEP="${CONTAINER_TEST_KEEP:-0}" CONTAINER_TEST_NETWORK="${CONTAINER_TEST_NETWORK:-bridge}" PATH="$PATH" bash "$ROOT/scripts/test-container.sh" "$@"
  fi
  skip "needs root (rootful podman) and password-less sudo is not available"
fi

WORK=$(mktemp -d /tmp/clipprep-ctest.XXXXXX)
HOST_PID=
CURL_PID=
cleanup() {
  [[ -n $CURL_PID ]] && kill "$CURL_PID" 2>/dev/null
  if [[ -n $HOST_PID ]]; then kill "$HOST_PID" 2>/dev/null; wait "$HOST_PID" 2>/dev/null; fi
  if command -v podman >/dev/null; then
    # one name per call: podman 4.3 removes nothing when one of several names is missing
    for c in "$NAME-reader" "$NAME"; do timeout 60 podman rm -f -t 0 --ignore "$c" >/dev/null 2>&1; done
    if [[ ${CONTAINER_TEST_KEEP:-0} != 1 ]]; then
      timeout 60 podman rmi -f "$IMAGE" >/dev/null 2>&1
    fi
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

missing=()
for c in podman runc debootstrap; do command -v "$c" >/dev/null || missing+=("$c"); done
if ((${#missing[@]})); then
  log "installing ${missing[*]} (apt-get)"
  if ! { DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq podman runc debootstrap ||
         { timeout 120 apt-get update -qq &&
           DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq podman runc debootstrap; }
       } >"$WORK/apt.log" 2>&1; then
    tail -5 "$WORK/apt.log"
    skip "could not install podman runc debootstrap with apt-get (see above)"
  fi
fi

# Without a systemd user session podman must manage cgroups itself; the default ulimits of
# containers.conf cannot be set in every environment.
cat >"$WORK/containers.conf" <<'EOF'
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
EOF
export CONTAINERS_CONF=$WORK/containers.conf
PODMAN=(timeout 120 podman --runtime runc)
log "$(podman --version), $(runc --version | head -1)"

if podman image exists "$BASE_IMAGE"; then
  log "base image $BASE_IMAGE: cached"
else
  log "base image $BASE_IMAGE: debootstrap --variant=minbase bookworm (once; cached afterwards)"
  if ! timeout 600 debootstrap --variant=minbase bookworm "$WORK/rootfs" http://deb.debian.org/debian \
       >"$WORK/debootstrap.log" 2>&1; then
    tail -5 "$WORK/debootstrap.log"
    skip "debootstrap failed (offline?), see above"
  fi
  rm -f "$WORK"/rootfs/var/cache/apt/archives/*.deb
  if ! tar -C "$WORK/rootfs" -c . | timeout 300 podman import - "$BASE_IMAGE" >"$WORK/import.log" 2>&1; then
    tail -5 "$WORK/import.log"
    skip "podman import of the debootstrap tree failed, see above"
  fi
  rm -rf "$WORK/rootfs"
  log "base image imported"
fi

if ! out=$("${PODMAN[@]}" run --rm --network none "$BASE_IMAGE" true 2>&1); then
  echo "$out" | tail -5
  skip "podman cannot run a container here (no user/mount namespaces or cgroups?), see above"
fi

# Host-side helpers: free ports, JSON, test images.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
json() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

PY=$ROOT/.venv/bin/python
SMALL=$WORK/small.jpg LARGE=$WORK/large.jpg
if [[ -x $PY ]] && "$PY" -c 'import PIL, numpy' 2>/dev/null; then
  "$PY" - "$SMALL" "$LARGE" <<'EOF'
import sys
import numpy as np
from PIL import Image
rng = np.random.default_rng(7)
for path, (w, h) in zip(sys.argv[1:], [(640, 480), (4000, 3000)]):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([127 + 100 * np.sin(x / 37.0) * np.cos(y / 53.0),
                    127 + 100 * np.sin((x + y) / 71.0),
                    (x * 255.0 / w + y * 128.0 / h) % 256], -1)
    rgb += rng.normal(0, 2, (h, w, 3))
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path, quality=85)
EOF
  log "test JPEGs made with Pillow: 640x480, 4000x3000"
else
  cp tests/fuzz/corpus/decode/rgb.jpg "$SMALL"
  big=$(ls .bench/*_4000x3000.jpg 2>/dev/null | head -1)
  cp "${big:-$SMALL}" "$LARGE"
  log "no Pillow in .venv: using tests/fuzz/corpus/decode/rgb.jpg and ${big:-the same file} as test JPEGs"
fi

# ------------------------------------------------------------------ 1. build
CTX=$WORK/src
mkdir -p "$CTX"
if [[ $SOURCE == head ]]; then
  git cat-file -e HEAD:Dockerfile 2>/dev/null || echo "note: HEAD has no Dockerfile (not committed yet?)"
  git archive HEAD | tar -x -C "$CTX"
  src_desc="git archive HEAD ($(git rev-parse --short HEAD))"
else
  git ls-files -z -c -o --exclude-standard | while IFS= read -r -d '' f; do
    [[ -e $f ]] && printf '%s\0' "$f"
  done | tar --null -T - -c | tar -x -C "$CTX"
  src_desc="working tree, git-visible files only (tracked + untracked, not ignored; HEAD $(git rev-parse --short HEAD)$(git diff --quiet HEAD 2>/dev/null || echo ', with uncommitted changes'))"
fi
[[ -e $CTX/bin || -e $CTX/build || -e $CTX/.venv ]] && { echo "build context is not clean"; exit 1; }
log "1. building $IMAGE from $src_desc"
t=$SECONDS
timeout 540 podman build --isolation chroot --format docker --layers=false \
  --build-arg BASE="$BASE_IMAGE" --build-arg RUNTIME_BASE="$BASE_IMAGE" \
  -t "$IMAGE" "$CTX" >"$WORK/build.log" 2>&1
rc=$?
if ((rc != 0)); then
  tail -20 "$WORK/build.log"
  if grep -qE 'Temporary failure resolving|Could not resolve|Failed to fetch|Unable to fetch|Network is unreachable|Could not connect' "$WORK/build.log"; then
    skip "the image build could not download Debian packages (offline?), see above"
  fi
  fail "1. image build (rc=$rc after $((SECONDS - t))s, log above)"
  echo "FAIL 2-5 not run: no image"
  failed=$((failed + 4))
  echo "$passed passed, $failed failed (total $((SECONDS - T0))s)"
  exit 1
fi
size=$(podman image inspect -f '{{.Size}}' "$IMAGE")
pass "1. image built in $((SECONDS - t))s from $src_desc; size $((size / 1000000)) MB ($size bytes; base $(( $(podman image inspect -f '{{.Size}}' "$BASE_IMAGE") / 1000000 )) MB)"
grep -E '^(features|libraries):' "$WORK/build.log" | head -2 | sed 's/^/     /'

# ------------------------------------------------------------------ 2. start, non-root, /healthz
# One worker makes the large request of check 5 long enough to be in flight at the signal.
PORT=$(free_port)
BASEURL=http://127.0.0.1:$PORT
wait_healthz() {  # url, seconds
  local i
  for ((i = 0; i < $2 * 5; i++)); do
    curl -fsS -m 2 "$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}
t=$SECONDS
netmode="bridge, published on 127.0.0.1:$PORT"
if [[ ${CONTAINER_TEST_NETWORK:-bridge} == host ]] ||
   ! "${PODMAN[@]}" run -d --name "$NAME" --shm-size 256m -p "127.0.0.1:$PORT:8080" \
       -e CLIPPREP_CPU_WORKERS=1 "$IMAGE" >"$WORK/run.log" 2>&1 || ! wait_healthz "$BASEURL" 20; then
  [[ ${CONTAINER_TEST_NETWORK:-bridge} == host ]] ||
    log "bridge networking did not work ($(tail -1 "$WORK/run.log")); using --network host on 127.0.0.1"
  "${PODMAN[@]}" rm -f -t 0 "$NAME" >/dev/null 2>&1
  netmode="host network, listening on 127.0.0.1:$PORT"
  "${PODMAN[@]}" run -d --name "$NAME" --shm-size 256m --network host \
    -e CLIPPREP_HOST=127.0.0.1 -e CLIPPREP_PORT="$PORT" -e CLIPPREP_CPU_WORKERS=1 \
    "$IMAGE" >"$WORK/run.log" 2>&1
  wait_healthz "$BASEURL" 20
fi
health=$(curl -sS -m 5 "$BASEURL/healthz" 2>&1)
uid=$("${PODMAN[@]}" exec "$NAME" id -u 2>&1)
pid1_uid=$("${PODMAN[@]}" exec "$NAME" sh -c 'grep ^Uid: /proc/1/status' 2>&1 | awk '{print $2","$3","$4","$5}')
pid1_cmd=$("${PODMAN[@]}" exec "$NAME" sh -c 'tr "\0" " " </proc/1/cmdline' 2>&1)
hc=$(timeout 30 podman healthcheck run "$NAME" 2>&1); hc_rc=$?
log "container $NAME ($netmode), ready after $((SECONDS - t))s; PID 1: $pid1_cmd(uid $pid1_uid)"
if [[ $health == '{"status":"ok"}' && $uid =~ ^[0-9]+$ && $uid -ne 0 && $pid1_uid == "$uid,$uid,$uid,$uid" &&
      $hc_rc -eq 0 ]]; then
  pass "2. runs as uid $uid (not root), /healthz: $health, HEALTHCHECK: ${hc:-healthy}"
else
  fail "2. uid='$uid' pid1_uid='$pid1_uid' healthz='$health' healthcheck rc=$hc_rc '$hc'"
  "${PODMAN[@]}" logs "$NAME" 2>&1 | tail -10
fi

# ------------------------------------------------------------------ 3. same bytes as the host build
t=$SECONDS
host_env=(env)
while IFS='=' read -r k _; do [[ $k == CLIPPREP_* ]] && host_env+=(-u "$k"); done < <(env)
"${host_env[@]}" CLIPPREP_HOST=127.0.0.1 CLIPPREP_PORT=0 CLIPPREP_SHM_NAME="/clipprep-ctest-$$" \
  "$ROOT/bin/clipprepd" --config "$ROOT/config/clipprep.json" 2>"$WORK/host.log" &
HOST_PID=$!
HOST_PORT=
for ((i = 0; i < 100; i++)); do
  HOST_PORT=$(grep -m1 '"msg":"listening"' "$WORK/host.log" 2>/dev/null | grep -o '"port":[0-9]*' | cut -d: -f2)
  [[ -n $HOST_PORT ]] && break
  kill -0 "$HOST_PID" 2>/dev/null || break
  sleep 0.1
done
ok3=1
if [[ -z $HOST_PORT ]]; then
  ok3=0; echo "host daemon did not start:"; tail -5 "$WORK/host.log"
else
  for spec in "small.jpg clip-224" "large.jpg siglip-224"; do
    read -r img prof <<<"$spec"
    c_code=$(curl -sS -m 60 -o "$WORK/c-$prof.raw" -w '%{http_code}' --data-binary @"$WORK/$img" \
      "$BASEURL/v1/preprocess?format=raw&profile=$prof")
    h_code=$(curl -sS -m 60 -o "$WORK/h-$prof.raw" -w '%{http_code}' --data-binary @"$WORK/$img" \
      "http://127.0.0.1:$HOST_PORT/v1/preprocess?format=raw&profile=$prof")
    c_len=$(stat -c %s "$WORK/c-$prof.raw" 2>/dev/null || echo 0)
    if [[ $c_code == 200 && $h_code == 200 ]] && cmp -s "$WORK/c-$prof.raw" "$WORK/h-$prof.raw" && ((c_len > 0)); then
      echo "     $img $prof: $c_len bytes, sha256 $(sha "$WORK/c-$prof.raw" | cut -c1-16)… identical"
    else
      ok3=0
      echo "     $img $prof: container HTTP $c_code ($c_len bytes), host HTTP $h_code: differ"
    fi
  done
fi
host_backend=$(grep -m1 '"msg":"listening"' "$WORK/host.log" 2>/dev/null | grep -o '"backend":"[a-z]*"' | cut -d'"' -f4)
if ((ok3)); then
  pass "3. container tensors equal the host build's (bin/clipprepd, $(./bin/clipprepd --version | sed -n 's/^features: //p'), backend ${host_backend:-?}) byte for byte [$((SECONDS - t))s]"
else
  fail "3. container and host tensors"
fi
if [[ -n $HOST_PID ]]; then kill "$HOST_PID" 2>/dev/null; wait "$HOST_PID" 2>/dev/null; HOST_PID=; fi

# ------------------------------------------------------------------ 4. shm across containers
t=$SECONDS
ans=$(curl -sS -m 30 --data-binary @"$SMALL" "$BASEURL/v1/preprocess?format=shm" 2>&1)
if key=$(json 'd["shm"]["key"]' <<<"$ans" 2>/dev/null) &&
   off=$(json 'd["shm"]["offset"]' <<<"$ans") && len=$(json 'd["shm"]["byte_size"]' <<<"$ans") &&
   lease=$(json 'd["lease"]["id"]' <<<"$ans"); then
  # The reader is the same image with its entrypoint replaced: /bin/sh, dd and sha256sum
  # (coreutils), same UID as the daemon (the object is created mode 0600).
  reader=$("${PODMAN[@]}" run --rm --name "$NAME-reader" --ipc "container:$NAME" --network none \
             --no-healthcheck --entrypoint /bin/sh "$IMAGE" -c \
             'echo "uid $(id -u)"; dd if="/dev/shm/${1#/}" iflag=skip_bytes,count_bytes skip="$2" count="$3" bs=1M status=none | sha256sum' \
             sh "$key" "$off" "$len" 2>"$WORK/reader.err")
  want=$(sha "$WORK/c-clip-224.raw" 2>/dev/null)
  got=$(sed -n 's/^\([0-9a-f]\{64\}\) .*/\1/p' <<<"$reader")
  del=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' -X DELETE "$BASEURL/v1/leases/$lease")
  if [[ -n $got && $got == "$want" ]]; then
    pass "4. reader container ($(head -1 <<<"$reader"), --ipc container:$NAME) read $key offset $off, $len bytes: sha256 ${got:0:16}… = format=raw answer; lease released (HTTP $del) [$((SECONDS - t))s]"
  else
    fail "4. shm read: got '${got:-none}', want '$want'; reader said: $reader $(tail -3 "$WORK/reader.err")"
  fi
else
  fail "4. format=shm answer: $ans"
fi

# ------------------------------------------------------------------ 5. SIGTERM during a request
t=$SECONDS
N=64
args=()
for ((i = 0; i < N; i++)); do args+=(-F "i$i=@$LARGE"); done
expect=$((N * 3 * 224 * 224 * 4))
curl -sS -m 120 -o "$WORK/big.raw" -w '%{http_code}' "${args[@]}" \
  "$BASEURL/v1/preprocess?format=raw" >"$WORK/big.code" 2>"$WORK/big.err" &
CURL_PID=$!
inflight=0
for ((i = 0; i < 100; i++)); do  # until the daemon has the request (at most 10 s)
  inflight=$(curl -sS -m 2 "$BASEURL/metrics" 2>/dev/null | awk '$1 == "clipprep_inflight_requests" {print $2}')
  [[ ${inflight:-0} -ge 1 ]] && break
  kill -0 "$CURL_PID" 2>/dev/null || break
  sleep 0.1
done
ts=$SECONDS
stop_out=$(timeout 90 podman stop -t 60 "$NAME" 2>&1)
stop_s=$((SECONDS - ts))
wait "$CURL_PID"; CURL_PID=
code=$(cat "$WORK/big.code" 2>/dev/null)
got_len=$(stat -c %s "$WORK/big.raw" 2>/dev/null || echo 0)
exit_code=$(timeout 30 podman wait "$NAME" 2>/dev/null || podman inspect -f '{{.State.ExitCode}}' "$NAME" 2>&1)
drain_line=$("${PODMAN[@]}" logs "$NAME" 2>&1 | grep -m1 '"msg":"draining"')
drain_inflight=$(grep -o '"inflight":[0-9]*' <<<"$drain_line" | cut -d: -f2)
if [[ $code == 200 && $got_len == "$expect" && $exit_code == 0 && ${drain_inflight:-0} -ge 1 ]]; then
  pass "5. podman stop with $N x 4000x3000 JPEGs in flight (daemon: inflight=$drain_inflight at SIGTERM): HTTP $code, $got_len bytes, container exited $exit_code after ${stop_s}s [$((SECONDS - t))s]"
else
  fail "5. HTTP '$code' ($got_len of $expect bytes; $(cat "$WORK/big.err" 2>/dev/null)), exit code '$exit_code', inflight at SIGTERM '${drain_inflight:-?}' (metrics said ${inflight:-?}), stop: $stop_out"
  "${PODMAN[@]}" logs "$NAME" 2>&1 | tail -6
fi

echo "$passed passed, $failed failed (total $((SECONDS - T0))s)"
((failed == 0))
