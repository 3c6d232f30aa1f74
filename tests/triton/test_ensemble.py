"""The recipe's ensemble (config/deploy/triton/clip: clip_preprocess -> clip_vision) in a real
tritonserver, with a Python-backend stand-in for the vision tower whose "embedding" carries the
SHA-256 of the tensor it received (tests/triton/models/clip_vision_standin). Encoded images in,
over HTTP and gRPC; every tensor that reached the model is bit-identical to transformers 4.57.1's
CLIPImageProcessor output; a bad image fails its own request only; concurrent clients."""
from __future__ import annotations

import concurrent.futures as cf
import hashlib

import numpy as np
import pytest
import tritonclient.grpc as grpc
import tritonclient.http as http
from tritonclient.utils import InferenceServerException

import reference  # tests/reference.py
from triton_fixtures import images, triton  # noqa: F401 (fixtures)


def embed(client_mod, url: str, data: list[bytes]) -> np.ndarray:
    client = client_mod.InferenceServerClient(url)
    try:
        inp = client_mod.InferInput("images", [len(data), 1], "BYTES")
        inp.set_data_from_numpy(np.array(data, dtype=np.object_).reshape(-1, 1))
        return client.infer("clip", [inp]).as_numpy("image_embeds")
    finally:
        client.close()


def expected_digest(img: bytes) -> np.ndarray:
    ref = np.ascontiguousarray(reference.hf_clip(img, 224, 224)[0], dtype="<f4")
    return np.frombuffer(hashlib.sha256(ref.tobytes()).digest(), np.uint8).astype(np.float32)


def assert_exact(emb: np.ndarray, data: list[bytes], what: str):
    assert emb.shape == (len(data), 512) and emb.dtype == np.float32, emb.shape
    for i, b in enumerate(data):
        np.testing.assert_array_equal(emb[i, :32], expected_digest(b),
                                      err_msg=f"{what}: image {i} reached clip_vision changed")


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_ensemble_feeds_the_model_the_exact_tensor(triton, images, protocol):
    mod, url = (http, triton.http_url) if protocol == "http" else (grpc, triton.grpc_url)
    data = list(images.values())  # 6 images: JPEG, gray JPEG, RGBA PNG, WebP, PNG, 1080p JPEG
    assert_exact(embed(mod, url, data), data, protocol)


def test_ensemble_bad_image_fails_its_request_with_the_cause(triton, images):
    data = [images["png_224x224"], b"\x89PNG\r\n\x1a\n" + b"\0" * 40]
    for mod, url in ((http, triton.http_url), (grpc, triton.grpc_url)):
        with pytest.raises(InferenceServerException, match=r"image 1: invalid_image:"):
            embed(mod, url, data)
    # and the ensemble still answers the next request
    assert_exact(embed(http, triton.http_url, data[:1]), data[:1], "after an error")


def test_ensemble_concurrent_clients_mixed_protocols_and_batches(triton, images):
    names = list(images)
    jobs = []
    for k in range(16):  # requests of 1..3 images, alternating protocols, one bad among them
        batch = [images[names[(k + j) % len(names)]] for j in range(1 + k % 3)]
        if k == 7:
            batch = batch + [b"not an image"]
        jobs.append(((http, triton.http_url) if k % 2 else (grpc, triton.grpc_url), batch))

    def run(job):
        (mod, url), data = job
        try:
            return embed(mod, url, data)
        except InferenceServerException as e:
            return e

    with cf.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, jobs))
    for k, ((_, _), data) in enumerate(jobs):
        if k == 7:
            assert isinstance(results[k], InferenceServerException), results[k]
            assert f"image {len(data) - 1}: unsupported_format:" in results[k].message()
        else:
            assert isinstance(results[k], np.ndarray), f"request {k}: {results[k]}"
            assert_exact(results[k], data, f"request {k}")
