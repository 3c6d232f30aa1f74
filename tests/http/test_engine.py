"""The engine behind the API: batching under concurrency, graceful shutdown, metrics,
request ids. Content is compared with the daemon's own single-request answers (whose exactness
the parity suite establishes) and with the references."""
import json
import random
import re
import signal
import threading
import time

import numpy as np

import images
import reference as ref
from conftest import decode_tensor, describe_error

MIX = ["astronaut_640x480_q90_420.jpg", "rocket_333x500.png", "odd_17x9.jpg", "gray_640x480.jpg",
       "strip_3000x20.jpg", "palette_640x480.png", "coffee_1000x667.webp", "px_1x1.png",
       "cmyk_640x480.jpg", "thin_3x1000.png"]
PROFILES = ["clip-224", "clip-336", "openclip-224", "siglip-224", "siglip-384"]


def _request_plan(seed: int):
    """A random mixed request: 1..4 images, a profile, a format and a dtype."""
    rnd = random.Random(seed)
    names = [rnd.choice(MIX) for _ in range(rnd.randint(1, 4))]
    return names, rnd.choice(PROFILES), rnd.choice(["npy", "raw", "json"]), rnd.choice(["float32", "float16"])


def _send(d, names, profile, fmt, dtype):
    parts = [images.get(n).data for n in names]
    r = d.post_batch(parts, profile=profile, format=fmt, dtype=dtype)
    assert r.status_code == 200, describe_error(r)
    return decode_tensor(r)


def test_48_concurrent_mixed_requests_equal_their_single_request_results(daemon_factory):
    # a small delay makes batches actually form across requests
    d = daemon_factory({"max_queue_delay_us": 2000, "max_batch_size": 8})
    plans = [_request_plan(s) for s in range(48)]
    singles = [_send(d, *p) for p in plans]
    results: list = [None] * len(plans)
    errors: list = []

    def worker(k):
        try:
            results[k] = _send(d, *plans[k])
        except Exception as e:  # noqa: BLE001 - reported below with the request
            errors.append((k, plans[k], repr(e)))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(plans))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors[:3]
    for k, (single, conc) in enumerate(zip(singles, results)):
        assert conc.dtype == single.dtype and conc.shape == single.shape, plans[k]
        assert np.array_equal(conc, single), f"request {k} {plans[k]} differs under concurrency"
    # and one of them against the reference, so "equal to itself" is not all we know
    names, profile, _, _ = plans[0]
    want = np.concatenate([ref.expected(profile, images.get(n).data)[0] for n in names])
    single0 = singles[0].astype(np.float32)
    if singles[0].dtype == np.float16:
        want = want.astype(np.float16).astype(np.float32)
    assert np.array_equal(single0, want)


def test_batch_order_is_kept(daemon):
    names = ["odd_17x9.jpg", "astronaut_640x480_q90_420.jpg", "px_1x1.png", "gray_640x480.jpg"]
    got = _send(daemon, names, "clip-224", "npy", "float32")
    for k, n in enumerate(names):
        assert np.array_equal(got[k], ref.expected("clip-224", images.get(n).data)[0][0]), n


def _metric(text: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$", text, re.M)
    assert m, f"{name}{labels} not in /metrics"
    return float(m.group(1))


def test_metrics_exposition(daemon_factory):
    d = daemon_factory()
    r = d.get("/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    for name in ["clipprep_requests_total", "clipprep_request_duration_seconds_bucket",
                 "clipprep_images_total", "clipprep_batch_size_bucket", "clipprep_queue_depth",
                 "clipprep_queue_wait_seconds_bucket", "clipprep_decode_seconds_bucket",
                 "clipprep_compute_seconds_bucket", "clipprep_inflight_requests",
                 "clipprep_pinned_bytes", "clipprep_build_info"]:
        assert re.search(rf"^{name}[ {{]", r.text, re.M), name
    backend = d.get("/readyz").json()["backend"]
    assert re.search(rf'^clipprep_build_info\{{version="[^"]+",backend="{backend}"\}} 1$', r.text,
                     re.M)
    before = _metric(r.text, "clipprep_images_total")
    ok = d.post_batch([images.get("odd_17x9.jpg").data, images.get("px_1x1.png").data])
    assert ok.status_code == 200
    bad = d.post(b"not an image")
    assert bad.status_code == 415
    after = d.get("/metrics").text
    assert _metric(after, "clipprep_images_total") == before + 2
    assert _metric(after, "clipprep_requests_total", '{route="/v1/preprocess",code="415"}') >= 1
    assert _metric(after, "clipprep_decode_seconds_count") >= 2
    # the hybrid JPEG decode's counters exist for every result; on the CPU backend nothing is
    # decoded on the GPU (decode_on_gpu=auto means off there); on the CUDA backend the JPEG
    # went to the GPU decode and the PNG was counted as not_jpeg
    results = ["ok", "not_jpeg", "scaled", "too_large", "corrupt", "block_smoothing", "layout",
               "idct_guard"]
    counts = {k: _metric(after, "clipprep_gpu_decode_images_total", f'{{result="{k}"}}')
              for k in results}
    if backend == "cpu":
        assert all(v == 0 for v in counts.values()), counts
    else:
        assert counts["ok"] >= 1 and counts["not_jpeg"] >= 1, counts


def test_request_id_is_echoed_or_generated(daemon):
    r = daemon.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert r.headers.get("X-Request-Id") == "abc-123"
    r1, r2 = daemon.get("/healthz"), daemon.get("/healthz")
    assert r1.headers.get("X-Request-Id") and r1.headers["X-Request-Id"] != r2.headers["X-Request-Id"]
    r = daemon.post(images.get("odd_17x9.jpg").data, headers={"X-Request-Id": "req-42"})
    assert r.status_code == 200 and r.headers.get("X-Request-Id") == "req-42"


def test_sigterm_finishes_the_batch_in_flight_and_exits_zero(daemon_factory):
    d = daemon_factory({"cpu_workers": 1, "max_body_bytes": "256MiB"})
    big = images.get("hubble_4000x3000_q90_420.jpg").data
    parts = [big] * 24  # about a second of work or more on one worker
    out = {}

    def post():
        out["resp"] = d.post_batch(parts)

    t = threading.Thread(target=post)
    t.start()
    deadline = time.time() + 60
    while time.time() < deadline and t.is_alive():  # until the batch is accepted and in flight
        m = d.get("/metrics").text
        if _metric(m, "clipprep_inflight_requests") >= 1:
            break
        time.sleep(0.02)
    else:
        raise AssertionError(f"the batch never became in-flight: {out.get('resp')}")
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    ready = d.get("/readyz")
    assert ready.status_code == 503 and ready.json()["draining"] is True
    refused = d.post(images.get("odd_17x9.jpg").data)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "unavailable"
    t.join(120)
    r = out["resp"]
    assert r.status_code == 200, describe_error(r)
    got = decode_tensor(r)
    assert got.shape == (24, 3, 224, 224)
    want = ref.expected("clip-224", big)[0][0]
    assert all(np.array_equal(got[k], want) for k in range(24))
    assert d.proc.wait(60) == 0
    d._reader.join(5)  # every line the daemon wrote before exiting has been read
    logs = [rec.get("msg") for rec in d.log_records()]
    assert "draining" in logs and "stopped" in logs
