#!/usr/bin/env bash
# format=cuda_ipc on a GPU machine: a second process opens the exported handle and reads the
# tensor; it must equal the format=raw answer for the same image, byte for byte, which must
# equal the CPU backend's. Also format=shm through the pinned pool on the CUDA backend, and a
# v2 CUDA region whose byte_size overstates the allocation (refused: cuMemGetAddressRange).
# The CUDA daemon waits with cuda_sync "blocking".
#   tests/gpu/test_cuda_ipc.sh BIN_DIR IMAGE.jpg   -> "N passed, N failed"
set -uo pipefail
bin=${1:?bin dir}; img=${2:?image}
work=$(mktemp -d); pass=0; fail=0; pid=; cpid=
trap 'kill $pid $cpid 2>/dev/null; wait $pid $cpid 2>/dev/null; rm -rf "$work"' EXIT
cat >"$work/cfg.json" <<JSON
{"profiles_dir": "$PWD/config/profiles", "port": 0, "backend": "cuda", "shm_name": "/clipprep-ipc-test-$$",
 "allow_client_shm": true, "cuda_sync": "blocking"}
JSON
cat >"$work/cpu.json" <<JSON
{"profiles_dir": "$PWD/config/profiles", "port": 0, "backend": "cpu", "shm_bytes": 0}
JSON
"$bin/clipprepd" --config "$work/cfg.json" 2>"$work/log" & pid=$!
"$bin/clipprepd" --config "$work/cpu.json" 2>"$work/cpu.log" & cpid=$!
for _ in $(seq 300); do grep -q '"listening"' "$work/log" && grep -q '"listening"' "$work/cpu.log" && break; sleep 0.1; done
port=$(grep -o '"port":[0-9]*' "$work/log" | head -1 | cut -d: -f2)
cport=$(grep -o '"port":[0-9]*' "$work/cpu.log" | head -1 | cut -d: -f2)
url="http://127.0.0.1:$port/v1/preprocess"
check() { if "$@"; then pass=$((pass + 1)); echo "PASS: $desc"; else fail=$((fail + 1)); echo "FAIL: $desc"; fi; }
desc="the daemon runs on the GPU (backend cuda, kernels checked at start)"
check grep -q '"backend":"cuda"' "$work/log"
for dtype in float32 float16; do
  curl -sf --data-binary @"$img" "$url?format=raw&dtype=$dtype" -o "$work/raw"
  curl -sf --data-binary @"$img" "http://127.0.0.1:$cport/v1/preprocess?format=raw&dtype=$dtype" -o "$work/cpu.raw"
  desc="format=raw ($dtype) from the GPU equals the CPU backend's"
  check cmp -s "$work/raw" "$work/cpu.raw"
  curl -sf --data-binary @"$img" "$url?format=cuda_ipc&dtype=$dtype" -o "$work/ipc.json"
  read -r handle dev off size lease < <(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); c=j["cuda"]; print(c["raw_handle"], c["device_id"], c["offset"], c["byte_size"], j["lease"]["id"])' "$work/ipc.json")
  "$bin/tests/ipc_reader" "$handle" "$dev" "$off" "$size" >"$work/ipc.raw"
  desc="cuda_ipc $dtype tensor read by another process equals format=raw"
  check cmp -s "$work/raw" "$work/ipc.raw"
  desc="lease $lease released"
  check curl -sf -X DELETE "http://127.0.0.1:$port/v1/leases/$lease" -o /dev/null
  # format=shm on the CUDA backend: the D2H copy lands in the (pinned) pool directly
  curl -sf --data-binary @"$img" "$url?format=shm&dtype=$dtype" -o "$work/shm.json"
  read -r key off size < <(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["shm"]; print(s["key"], s["offset"], s["byte_size"])' "$work/shm.json")
  python3 -c 'import sys; f=open("/dev/shm"+sys.argv[1],"rb"); f.seek(int(sys.argv[2])); sys.stdout.buffer.write(f.read(int(sys.argv[3])))' "$key" "$off" "$size" >"$work/shm.raw"
  desc="shm ($dtype) on the CUDA backend equals format=raw"
  check cmp -s "$work/raw" "$work/shm.raw"
done

# Triton's v2/cudasharedmemory: a client GPU buffer (ipc_owner) registered by handle; an infer
# whose output names it gets the tensor written on the GPU.
curl -sf --data-binary @"$img" "$url?format=raw" -o "$work/raw"
size=$(stat -c %s "$work/raw")
coproc OWNER { "$bin/tests/ipc_owner" "$size" "$work/owner.raw"; }
read -r handle <&"${OWNER[0]}"
desc="v2/cudasharedmemory register with a byte_size past the allocation is refused (400)"
code=$(curl -s -X POST "http://127.0.0.1:$port/v2/cudasharedmemory/region/toobig/register" \
      -d "{\"raw_handle\":{\"b64\":\"$handle\"},\"device_id\":0,\"byte_size\":$((size + 64 * 1048576))}" \
      -o "$work/toobig.json" -w '%{http_code}')
check grep -q "larger than the allocation" "$work/toobig.json"
[[ $code == 400 ]] || { fail=$((fail + 1)); echo "FAIL: status $code"; }
desc="v2/cudasharedmemory register"
check curl -sf -X POST "http://127.0.0.1:$port/v2/cudasharedmemory/region/gpu0/register" \
      -d "{\"raw_handle\":{\"b64\":\"$handle\"},\"device_id\":0,\"byte_size\":$size}" -o /dev/null
desc="infer with its output in the client GPU region"
check python3 - "$port" "$img" "$size" <<'PY'
import json, struct, sys, urllib.request
port, img, size = sys.argv[1], open(sys.argv[2], "rb").read(), int(sys.argv[3])
data = struct.pack("<I", len(img)) + img
hdr = json.dumps({"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1],
                              "parameters": {"binary_data_size": len(data)}}],
                  "outputs": [{"name": "pixel_values", "parameters": {
                      "shared_memory_region": "gpu0", "shared_memory_byte_size": size}}]}).encode()
req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/clip-224/infer", data=hdr + data,
                             headers={"Inference-Header-Content-Length": str(len(hdr))})
out = json.loads(urllib.request.urlopen(req).read())
assert out["outputs"][0]["parameters"]["shared_memory_region"] == "gpu0", out
PY
echo go >&"${OWNER[1]}"
wait "$OWNER_PID"
desc="client GPU region holds the format=raw tensor"
check cmp -s "$work/raw" "$work/owner.raw"
desc="v2/cudasharedmemory unregister"
check curl -sf -X POST "http://127.0.0.1:$port/v2/cudasharedmemory/region/gpu0/unregister" -o /dev/null
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
