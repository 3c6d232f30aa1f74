"""GPU failure semantics (docs/gpu.md) on the host emulation of the CUDA engine, whose fault
injection (CLIPPREP_EMU_FAULTS, kernels/emu_faults.h) makes start-up checks, launches, direct
copies, waits and host-to-device copies fail on a schedule, sticky or not.

The promise under test: no request ever gets a 200 with a tensor that was not computed for it.
A failed launch, copy or wait leaves poison where its results would be (the emulation writes
0x7F bytes into the slot's output and the batch's direct destinations), so an executor that
answered with them anyway shows up here as a tensor different from the reference: the CPU
backend of the same binary, image by image (itself equal to Pillow + transformers, checked
once). Every answer must be that tensor; the one allowed exception is format=cuda_ipc, whose
destination is GPU memory: when the CPU path cannot copy into it any more the image fails
with 503 `unavailable`. /healthz and /readyz follow docs/gpu.md: a non-sticky failure changes
neither; a lost GPU makes /healthz 503 (restart me) while /readyz stays 200 (answers are
still right: healthy GPUs or the CPU path do the work).

The fault hooks exist only in the emulation build: against any other binary (the normal
`make test` run of tests/http) this module skips, naming the binary; `make test-emu` runs it.
"""
from __future__ import annotations

import base64
import concurrent.futures
import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import requests

import images
import reference as ref
import shm_consumer
from conftest import REPO, Daemon, assert_error, base_config, decode_npy, describe_error

CORPUS = REPO / "tests" / "fuzz" / "corpus" / "decode"
MiB = 1 << 20


@pytest.fixture(scope="module")
def emu_binary(request) -> str:
    binary = request.config.getoption("--daemon-bin")
    if not Path(binary).is_file():
        pytest.fail(f"daemon binary {binary} does not exist", pytrace=False)
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout
    if "cuda: emulated" not in out:
        features = next((ln for ln in out.splitlines() if ln.startswith("features:")), out)
        pytest.skip(f"fault injection exists only in the emulation build (make test-emu); "
                    f"{binary} is not it ({features.strip()})")
    return binary


def _images() -> list[tuple[str, bytes]]:
    return [
        ("astronaut 4:2:0 (GPU decode)", images.get("astronaut_640x480_q90_420.jpg").data),
        ("coffee progressive (GPU decode)", images.get("coffee_1000x667_prog.jpg").data),
        ("rocket 4:2:2 (GPU decode)", images.get("rocket_333x500_422.jpg").data),
        ("gray (GPU decode)", images.get("gray_640x480.jpg").data),
        ("png (uploaded pixels)", images.get("rocket_333x500.png").data),
        ("block smoothing (uploaded pixels)", (CORPUS / "prog_smooth440.jpg").read_bytes()),
        ("IDCT guard trip (CPU redo)", (CORPUS / "randcoef420.jpg").read_bytes()),
        ("odd 17x9", images.get("odd_17x9.jpg").data),
        ("cmyk (GPU decode)", images.get("cmyk_640x480.jpg").data),
    ]


# Sequential requests (one batch each): different images in every one, so that a previous
# batch's tensors left in a slot would be wrong for the next request.
REQUESTS = [[0, 1, 2], [3, 4, 5, 6], [7, 0], [2, 6, 1, 4], [5], [8, 3, 0], [1, 7]]
GPU_DECODED = {0, 1, 2, 3, 7, 8}  # images counted as result="ok" when a healthy GPU decodes them


@pytest.fixture(scope="module")
def expected(emu_binary, tmp_path_factory) -> list[np.ndarray]:
    """Each image's tensor from the CPU backend of the same binary (float32, clip-224)."""
    d = Daemon.start(emu_binary, tmp_path_factory.mktemp("cpu-reference"), base_config(),
                     backend="cpu")
    try:
        out = []
        for name, data in _images():
            r = d.post(data)
            assert r.status_code == 200, f"{name}: {describe_error(r)}"
            out.append(decode_npy(r.content)[0])
        want, _ = ref.expected("clip-224", _images()[0][1])  # the oracle is Pillow's too
        assert np.array_equal(out[0], want[0])
        return out
    finally:
        assert d.stop() == 0


def _start(daemon_factory, faults: str, devices: int | None = None, **config) -> Daemon:
    env = {"CLIPPREP_EMU_FAULTS": faults}
    if devices:
        env["CLIPPREP_EMU_DEVICES"] = str(devices)
    config.setdefault("shm_bytes", 32 * MiB)
    config.setdefault("cuda_ipc_bytes", 32 * MiB)
    d = daemon_factory(config, env=env, backend="cuda")
    assert d.get("/readyz").json()["backend"] == "cuda"
    return d


def _ipc_key(answer: dict) -> str:
    handle = base64.b64decode(answer["cuda"]["raw_handle"]).rstrip(b"\0").decode()
    assert handle.startswith("clipprep-emu:/"), handle
    return handle[len("clipprep-emu:"):]


def _read_direct(d: Daemon, r: requests.Response, fmt: str) -> np.ndarray:
    """The tensor of a 200 format=shm / cuda_ipc answer, read where the daemon put it."""
    j = r.json()
    where = j["shm"] if fmt == "shm" else j["cuda"]
    key = where["key"] if fmt == "shm" else _ipc_key(j)
    arr, _ = shm_consumer.read_tensor(key, where["offset"], where["byte_size"], j["dtype"],
                                      j["shape"])
    assert d.request("DELETE", f"/v1/leases/{j['lease']['id']}").status_code == 200
    return arr


def _run(d: Daemon, idx: list[int], expected, fmt: str = "npy") -> int:
    """One request of images idx; asserts the answer is right (or, for format=cuda_ipc only,
    a 503 `unavailable`). Returns the status."""
    imgs = _images()
    r = d.post_batch([imgs[i][1] for i in idx], params={"format": fmt})
    if r.status_code != 200:
        assert fmt == "cuda_ipc", f"images {idx} format={fmt}: {describe_error(r)}"
        err = assert_error(r, 503, "unavailable")
        assert "GPU failure" in err["message"], err
        return 503
    got = decode_npy(r.content) if fmt == "npy" else _read_direct(d, r, fmt)
    assert got.shape == (len(idx),) + expected[0].shape
    for k, i in enumerate(idx):
        assert np.array_equal(got[k], expected[i]), \
            f"a 200 with a wrong tensor: image {i} ({imgs[i][0]}) of {idx}, format={fmt}"
    return 200


def _logged(d: Daemon, prefix: str, wait: bool = True, count: int = 1) -> list[dict]:
    """Log records whose msg starts with prefix; waits a little (stderr is read by another
    thread) until there are at least `count` of them, unless wait=False."""
    deadline = time.monotonic() + (5 if wait else 0)
    while True:
        recs = [r for r in d.log_records() if str(r.get("msg", "")).startswith(prefix)]
        if len(recs) >= count or time.monotonic() >= deadline:
            return recs
        time.sleep(0.02)


def _failures(d: Daemon, wait: bool = True, count: int = 1) -> list[dict]:
    return _logged(d, "CUDA failure", wait, count)


def _taken_out(d: Daemon, wait: bool = True) -> list[dict]:
    return _logged(d, "GPU taken out of service", wait)


def _metric(d: Daemon, series: str) -> float:
    m = re.search(rf"^{re.escape(series)} ([0-9.e+]+)$", d.get("/metrics").text, re.M)
    assert m, f"no {series} in /metrics"
    return float(m.group(1))


def _failure_counts(d: Daemon) -> tuple[float, float]:
    return (_metric(d, 'clipprep_gpu_failures_total{sticky="false"}'),
            _metric(d, 'clipprep_gpu_failures_total{sticky="true"}'))


def _gpu_decoded(d: Daemon) -> float:
    m = re.search(r'^clipprep_gpu_decode_images_total\{result="ok"\} ([0-9.e+]+)$',
                  d.get("/metrics").text, re.M)
    assert m, "no clipprep_gpu_decode_images_total{result=\"ok\"} in /metrics"
    return float(m.group(1))


def _health(d: Daemon) -> tuple[int, dict, int, dict]:
    h, r = d.get("/healthz"), d.get("/readyz")
    return h.status_code, h.json(), r.status_code, r.json()


def _assert_healthy(d: Daemon):
    hs, hb, rs, rb = _health(d)
    assert (hs, hb) == (200, {"status": "ok"}), hb
    assert rs == 200 and rb["ready"] is True and rb["gpus_lost"] == 0, rb


def _assert_gpu_lost(d: Daemon, lost: int = 1):
    hs, hb, rs, rb = _health(d)
    assert hs == 503 and hb == {"status": "gpu_lost", "gpus_lost": lost}, hb
    assert rs == 200 and rb["ready"] is True and rb["gpus_lost"] == lost, rb


# (format, CLIPPREP_EMU_FAULTS, sticky): every fault point, sticky and not, on the formats
# where it matters (copy / direct: the outputs written straight to shm or GPU memory).
CASES = [
    ("npy", "launch@2", False),
    ("npy", "launch@2-4", False),
    ("npy", "wait@3", False),
    ("npy", "launch@2:sticky", True),
    ("npy", "wait@3:sticky", True),
    ("shm", "launch@2", False),
    ("shm", "copy@2", False),
    ("shm", "copy@3-5", False),
    ("shm", "wait@2", False),
    ("shm", "copy@2:sticky", True),
    ("shm", "wait@4:sticky", True),
    ("cuda_ipc", "copy@2", False),
    ("cuda_ipc", "wait@3", False),
    ("cuda_ipc", "launch@2,direct@1", False),
    ("cuda_ipc", "wait@3:sticky", True),
    ("cuda_ipc", "direct@1:sticky", True),
]


@pytest.mark.parametrize("fmt,faults,sticky", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_no_fault_point_answers_a_wrong_tensor(daemon_factory, expected, fmt, faults, sticky):
    d = _start(daemon_factory, faults)
    statuses = [_run(d, idx, expected, fmt) for idx in REQUESTS]
    plain, lost = _failure_counts(d)
    assert plain + lost > 0, f"{faults}: no fault fired"
    assert (plain == 0) == sticky and (lost == 0) == (not sticky), (plain, lost)
    failures = _failures(d, count=int(plain + lost))  # one log line each, saying the same
    assert len(failures) == plain + lost and all(f["sticky"] == sticky for f in failures), failures
    if fmt != "cuda_ipc":
        assert statuses == [200] * len(REQUESTS)
        assert _metric(d, "clipprep_gpu_redone_images_total") >= 1
    assert _metric(d, "clipprep_gpus_lost") == (1 if sticky else 0)
    if sticky:
        _assert_gpu_lost(d)
        assert _taken_out(d)[0]["its_work"] == "CPU path"
        # the last GPU is gone: the CPU path serves on, with the same bytes
        before = _gpu_decoded(d)
        assert _run(d, [0, 4, 6], expected) == 200
        assert _gpu_decoded(d) == before
        if fmt == "cuda_ipc":  # GPU memory cannot be written by a lost GPU: 503, never a 200
            assert _run(d, [0], expected, "cuda_ipc") == 503
    else:
        _assert_healthy(d)
        assert not _taken_out(d, wait=False)
        # the GPU keeps serving: its hybrid decode counts again
        before = _gpu_decoded(d)
        assert _run(d, [0, 1, 4], expected, fmt) == 200
        assert _gpu_decoded(d) == before + 2


def test_direct_copy_failures_fail_only_their_images(daemon_factory, expected):
    """format=cuda_ipc: a launch fails, its images are redone on the CPU path and the first
    copy of a result into GPU memory fails: that request gets 503; the others are right."""
    d = _start(daemon_factory, "launch@2,direct@1")
    assert [_run(d, idx, expected, "cuda_ipc") for idx in REQUESTS[:4]] == [200, 503, 200, 200]
    _assert_healthy(d)


def test_concurrent_requests_under_faults(daemon_factory, expected):
    """Two slots in flight, several requests per batch, faults of every kind and a sticky one
    at the end: every answer is still the reference."""
    d = _start(daemon_factory, "launch@3,copy@4,wait@5,copy@7-8,wait@12:sticky",
               max_batch_size=8)
    jobs = [(REQUESTS[k % len(REQUESTS)], ("npy", "shm")[k % 2]) for k in range(40)]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda job: _run(d, job[0], expected, job[1]), jobs))
    assert statuses == [200] * len(jobs)
    assert _failures(d)
    _assert_gpu_lost(d)


def test_a_gpu_failing_every_batch_is_taken_out(daemon_factory, expected):
    """Non-sticky failures on every launch (say, a driver refusing the kernels): after a few
    batches in a row the GPU is taken out like a lost one, instead of failing forever."""
    d = _start(daemon_factory, "launch@*")
    for idx in REQUESTS + REQUESTS:
        assert _run(d, idx, expected) == 200
    out = _taken_out(d)
    assert len(out) == 1 and "every one of the last batches failed" in out[0]["reason"], out
    assert _failure_counts(d) == (8, 0)  # MAX_FAILURES_IN_A_ROW, then no more launches
    _assert_gpu_lost(d)


def test_failing_direct_copies_never_take_the_gpu_out(daemon_factory, expected):
    """Every copy into a direct destination fails (not sticky): those images are redone, but a
    destination's failures (a client's region) never count towards taking the GPU out."""
    d = _start(daemon_factory, "copy@*")
    for idx in REQUESTS + REQUESTS:
        assert _run(d, idx, expected, "shm") == 200
    assert _failure_counts(d) == (len(REQUESTS) * 2, 0)
    assert _metric(d, "clipprep_gpus_lost") == 0
    _assert_healthy(d)


def test_healthy_gpus_keep_serving_when_one_is_lost(daemon_factory, expected):
    """Two GPUs, the first lost on its first batch: its images are redone, the second GPU takes
    every later batch (all of them decoded on a GPU: the lost worker pops none), /healthz
    asks for a restart, /readyz stays ready."""
    d = _start(daemon_factory, "dev0.wait@1:sticky", devices=2)
    assert d.get("/readyz").json()["workers"] == 2
    for idx in REQUESTS:
        assert _run(d, idx, expected) == 200
    for _ in range(20):  # until device 0 has had a batch (the workers race for the queue)
        if _metric(d, "clipprep_gpus_lost") == 1:
            break
        assert _run(d, [0, 7], expected) == 200
    out = _taken_out(d)
    assert len(out) == 1 and out[0]["device"] == 0 and out[0]["its_work"] == "healthy GPUs", out
    _assert_gpu_lost(d)
    before = _gpu_decoded(d)
    for idx in REQUESTS:
        assert _run(d, idx, expected) == 200
    assert _gpu_decoded(d) - before == sum(len(GPU_DECODED.intersection(i)) for i in REQUESTS)


def test_cuda_devices_selects_the_gpus(daemon_factory, expected):
    """cuda_devices "1": device 0 (whose every launch would fail) is never used."""
    d = _start(daemon_factory, "dev0.launch@*:sticky", devices=2, cuda_devices="1")
    rz = d.get("/readyz").json()
    assert rz["workers"] == 1 and rz["device"].startswith("1x "), rz
    for idx in REQUESTS:
        assert _run(d, idx, expected) == 200
    assert _failure_counts(d) == (0, 0)
    _assert_healthy(d)


def _start_fails(binary: str, tmp_path: Path, config: dict, env: dict, backend: str) -> str:
    """Runs the daemon expecting it to refuse to start; returns its stderr."""
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(base_config(**config)))
    from conftest import _child_env
    p = subprocess.run([binary, "--config", str(cfg), "--port", "0", "--backend", backend],
                       capture_output=True, text=True, timeout=60,
                       env={**_child_env(), **env}, stdin=subprocess.DEVNULL)
    assert p.returncode == 2, f"status {p.returncode}\n{p.stderr}"
    return p.stderr


def test_start_refuses_a_missing_device(emu_binary, tmp_path):
    err = _start_fails(emu_binary, tmp_path, {"cuda_devices": "0,2"},
                       {"CLIPPREP_EMU_DEVICES": "2"}, "cuda")
    assert "cuda_devices" in err and "device 2 is not one of the 2 visible" in err, err


def test_kernels_are_checked_at_start(emu_binary, tmp_path, daemon_factory, expected):
    """A GPU without a kernel image (emulated by a failing start-up check): --backend cuda
    refuses to start, auto falls back to the CPU executor and logs why."""
    err = _start_fails(emu_binary, tmp_path, {}, {"CLIPPREP_EMU_FAULTS": "check@1"}, "cuda")
    assert "kernels cannot run there" in err and "no kernel image" in err, err
    d = daemon_factory({}, env={"CLIPPREP_EMU_FAULTS": "dev1.check@1",
                                "CLIPPREP_EMU_DEVICES": "2"}, backend="auto")
    assert d.get("/readyz").json()["backend"] == "cpu"
    why = d.wait_log("CUDA not used, falling back to the CPU executor")
    assert why and "device 1" in why[0]["reason"] and "kernels cannot run" in why[0]["reason"]
    assert _run(d, [0, 4], expected) == 200
    _assert_healthy(d)


def test_bad_fault_syntax_is_refused(emu_binary, tmp_path):
    err = _start_fails(emu_binary, tmp_path, {}, {"CLIPPREP_EMU_FAULTS": "launch@0"}, "cuda")
    assert "CLIPPREP_EMU_FAULTS: bad rule \"launch@0\"" in err, err


def test_cuda_region_byte_size_is_checked_against_the_allocation(daemon_factory, expected):
    """v2/cudasharedmemory: a byte_size larger than the allocation behind the handle is a 400
    (the real engine asks cuMemGetAddressRange); the exact size is accepted."""
    d = _start(daemon_factory, "", cuda_ipc_bytes=4 * MiB, allow_client_shm=True)
    r = d.post(_images()[7][1], format="cuda_ipc")
    assert r.status_code == 200, describe_error(r)
    body = {"raw_handle": {"b64": r.json()["cuda"]["raw_handle"]}, "device_id": 0}
    too_big = d.request("POST", "/v2/cudasharedmemory/region/r1/register",
                        json={**body, "byte_size": 4 * MiB + 1})
    assert too_big.status_code == 400, too_big.text
    assert "larger than the allocation" in too_big.json()["error"], too_big.text
    ok = d.request("POST", "/v2/cudasharedmemory/region/r2/register",
                   json={**body, "byte_size": 4 * MiB})
    assert ok.status_code == 200, ok.text
    status = d.get("/v2/cudasharedmemory/status").json()
    assert [s["name"] for s in status] == ["r2"], status
    assert d.request("POST", "/v2/cudasharedmemory/region/r2/unregister").status_code == 200
