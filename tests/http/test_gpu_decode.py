"""The hybrid JPEG decode through the daemon (decode_on_gpu, docs/gpu-decode.md).

These need the CUDA backend: `make test-emu` runs them against the host emulation of the CUDA
engine (kernels/engine_emu.c), and `--daemon-backend cuda` against a GPU. On the CPU backend
they skip, saying so. The oracle is the same daemon with decode_on_gpu=off (every image decoded
by the CPU decoder, as the CPU backend does) and, for ordinary photos, Pillow + transformers:
a batch that mixes eligible JPEGs with files the hybrid path must route to the CPU decoder
(block smoothing, an IDCT guard trip, PNG) gives the same tensors, and /metrics says which way
each image went.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import images
import reference as ref
from conftest import REPO, decode_npy

CORPUS = REPO / "tests" / "fuzz" / "corpus" / "decode"
RESULTS = ["ok", "not_jpeg", "scaled", "too_large", "corrupt", "block_smoothing", "layout",
           "idct_guard"]


def _counts(d) -> dict[str, float]:
    text = d.get("/metrics").text
    out = {}
    for r in RESULTS:
        m = re.search(rf'^clipprep_gpu_decode_images_total\{{result="{r}"\}} ([0-9.e+]+)$',
                      text, re.M)
        assert m, f"no clipprep_gpu_decode_images_total{{result=\"{r}\"}} in /metrics"
        out[r] = float(m.group(1))
    return out


def _cuda_daemon(daemon_factory, **config):
    d = daemon_factory(config)
    if d.get("/readyz").json()["backend"] != "cuda":
        pytest.skip("needs the CUDA backend (make test-emu, or --daemon-backend cuda on a GPU)")
    return d


# (name, bytes, how the hybrid path must treat it)
def _batch():
    return [
        ("astronaut 4:2:0", images.get("astronaut_640x480_q90_420.jpg").data, "ok"),
        ("coffee progressive", images.get("coffee_1000x667_prog.jpg").data, "ok"),
        ("rocket 4:2:2", images.get("rocket_333x500_422.jpg").data, "ok"),
        ("cmyk", images.get("cmyk_640x480.jpg").data, "ok"),
        ("gray", images.get("gray_640x480.jpg").data, "ok"),
        ("png", images.get("rocket_333x500.png").data, "not_jpeg"),
        ("progressive, block smoothing", (CORPUS / "prog_smooth440.jpg").read_bytes(),
         "block_smoothing"),
        ("random coefficients", (CORPUS / "randcoef420.jpg").read_bytes(), "idct_guard"),
        ("odd 17x9", images.get("odd_17x9.jpg").data, "ok"),
    ]


@pytest.mark.parametrize("profile", ["clip-224", "siglip-384"])
def test_hybrid_batch_equals_cpu_decode_and_reference(daemon_factory, profile):
    hybrid = _cuda_daemon(daemon_factory)
    cpu = daemon_factory({"decode_on_gpu": "off"})
    batch = _batch()
    before = _counts(hybrid)
    r = hybrid.post_batch([data for _, data, _ in batch], profile=profile)
    assert r.status_code == 200, r.text
    got = decode_npy(r.content)
    r = cpu.post_batch([data for _, data, _ in batch], profile=profile)
    assert r.status_code == 200, r.text
    want = decode_npy(r.content)
    assert got.shape == want.shape == (len(batch),) + got.shape[1:]
    for i, (name, _, _) in enumerate(batch):
        assert np.array_equal(got[i], want[i]), f"image {i} ({name}) differs from decode_on_gpu=off"
    # ordinary photos: also Pillow + transformers themselves
    for i in (0, 1, 2):
        expect, _ = ref.expected(profile, batch[i][1])
        assert np.array_equal(got[i], expect.reshape(got[i].shape)), \
            f"image {i} ({batch[i][0]}) != reference"
    after = _counts(hybrid)
    want_counts = {k: sum(1 for _, _, w in batch if w == k) for k in RESULTS}
    for k in RESULTS:
        assert after[k] - before[k] == want_counts[k], (k, before, after)
    assert _counts(cpu)["ok"] == 0  # decode_on_gpu=off: nothing on the GPU


def test_exif_orientation_on_the_gpu(daemon_factory):
    d = _cuda_daemon(daemon_factory)
    for o in (3, 6, 8):
        item = images.get(f"exif_o{o}_640x480.jpg")
        r = d.post(item.data, exif=1)
        assert r.status_code == 200, r.text
        expect, _ = ref.expected("clip-224", item.data, exif=True)
        assert np.array_equal(decode_npy(r.content), expect), f"orientation {o}"
    assert _counts(d)["ok"] == 3


def test_fast_mode_is_not_decoded_on_the_gpu(daemon_factory):
    d = _cuda_daemon(daemon_factory)
    r = d.post(images.get("chelsea_1920x1080_q90_420.jpg").data, params={"mode": "fast"})
    assert r.status_code == 200, r.text
    c = _counts(d)
    assert c["scaled"] == 1 and c["ok"] == 0, c
