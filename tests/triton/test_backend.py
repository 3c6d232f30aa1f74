"""libtriton_clipprep.so (make triton-backend) inside a real tritonserver: clip_preprocess (the
recipe's config.pbtxt, verbatim) and variants answer over HTTP and gRPC with tensors
bit-identical to transformers 4.57.1's CLIPImageProcessor / SiglipImageProcessor and to the
daemon's own answer for the same bytes; a bad image fails its own request only, with a Triton
error naming the image and the cause; misconfigured models refuse to load, saying why."""
from __future__ import annotations

import concurrent.futures as cf
import io
import re

import numpy as np
from PIL import Image
import pytest
import tritonclient.grpc as grpc
import tritonclient.http as http
from tritonclient.utils import InferenceServerException

from conftest import decode_npy  # tests/conftest.py
import reference  # tests/reference.py
from triton_fixtures import exif_image, images, triton  # noqa: F401 (fixtures)

MIXED = ["jpeg_640x480", "jpeg_gray_257x333", "png_rgba_300x500", "webp_1000x200",
         "png_224x224"]


def infer(client_mod, url: str, model: str, data: list[bytes], dtype=np.float32):
    client = client_mod.InferenceServerClient(url)
    try:
        inp = client_mod.InferInput("images", [len(data), 1], "BYTES")
        inp.set_data_from_numpy(np.array(data, dtype=np.object_).reshape(-1, 1))
        return client.infer(model, [inp]).as_numpy("pixel_values")
    finally:
        client.close()


def daemon_tensor(daemon, data: list[bytes], **params) -> np.ndarray:
    r = daemon.session.post(f"{daemon.url}/v1/preprocess", params={"format": "npy", **params},
                            files=[(f"image{i}", b) for i, b in enumerate(data)], timeout=120)
    assert r.status_code == 200, r.text[:300]
    return decode_npy(r.content)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_clip_preprocess_is_bit_exact_for_mixed_sizes_and_formats(triton, daemon, images,
                                                                  protocol):
    mod, url = (http, triton.http_url) if protocol == "http" else (grpc, triton.grpc_url)
    data = [images[n] for n in MIXED]
    got = infer(mod, url, "clip_preprocess", data)
    assert got.shape == (len(data), 3, 224, 224) and got.dtype == np.float32
    for i, name in enumerate(MIXED):
        np.testing.assert_array_equal(got[i], reference.hf_clip(data[i], 224, 224)[0],
                                      err_msg=f"{name} vs CLIPImageProcessor")
    np.testing.assert_array_equal(got, daemon_tensor(daemon, data), err_msg="vs clipprepd")


def test_fp16_output_is_the_reference_rounded_to_half(triton, daemon, images):
    data = [images["jpeg_1920x1080"], images["webp_1000x200"]]
    got = infer(http, triton.http_url, "prep_fp16", data)
    assert got.dtype == np.float16
    for i in range(len(data)):
        np.testing.assert_array_equal(got[i], reference.hf_clip(data[i])[0].astype(np.float16))
    np.testing.assert_array_equal(got, daemon_tensor(daemon, data, dtype="float16"))


def test_profile_and_exif_parameters(triton, images, exif_image):
    """prep_siglip_exif: the siglip-224 profile with exif=true (orientation 6 applied)."""
    data = [exif_image, images["png_rgba_300x500"]]
    got = infer(grpc, triton.grpc_url, "prep_siglip_exif", data)
    for i in range(len(data)):
        np.testing.assert_array_equal(got[i], reference.siglip(data[i], 224, exif=True)[0])
    # and the orientation mattered: without it the tensor differs
    assert not np.array_equal(got[0], reference.siglip(exif_image, 224, exif=False)[0])


def test_fast_mode_matches_the_daemons_fast_mode(triton, daemon, images):
    data = [images["jpeg_1920x1080"], images["jpeg_640x480"]]
    got = infer(http, triton.http_url, "prep_fast", data)
    np.testing.assert_array_equal(got, daemon_tensor(daemon, data, mode="fast"))
    # fast is not exact for a large JPEG: it really took the other path
    assert not np.array_equal(got[0], reference.hf_clip(data[0])[0])


def test_a_bad_image_fails_its_own_request_only(triton, images):
    """Four requests sent at once are executed as one batch (prep_batch waits for a full batch
    of 8); the one with a truncated JPEG fails naming image 1 and the cause, the others get
    exact tensors."""
    good = [images["jpeg_640x480"], images["png_224x224"]]
    bad = [images["webp_1000x200"], images["jpeg_640x480"][:3000]]
    batches = [good, bad, good[::-1], [images["jpeg_gray_257x333"], images["webp_1000x200"]]]
    stats0 = http.InferenceServerClient(triton.http_url).get_inference_statistics("prep_batch")

    def send(data):
        try:
            return infer(http, triton.http_url, "prep_batch", data)
        except InferenceServerException as e:
            return e

    with cf.ThreadPoolExecutor(len(batches)) as pool:
        results = list(pool.map(send, batches))
    err = results[1]
    assert isinstance(err, InferenceServerException), f"bad request answered: {err!r}"
    assert "image 1: invalid_image:" in err.message(), err.message()
    for k in (0, 2, 3):
        assert isinstance(results[k], np.ndarray), f"request {k} failed: {results[k]}"
        for i, b in enumerate(batches[k]):
            np.testing.assert_array_equal(results[k][i], reference.hf_clip(b)[0])
    st = http.InferenceServerClient(triton.http_url).get_inference_statistics("prep_batch")
    before = stats0["model_stats"][0]["execution_count"]
    after = st["model_stats"][0]["execution_count"]
    assert after - before == 1, f"the four requests ran in {after - before} executions"


def test_two_instances_serve_concurrent_clients_exactly(triton, images):
    """prep_two_instances: instance count 2, threads 1 each; 12 concurrent requests over both
    protocols, each with its own images, all answered exactly."""
    names = list(images)
    jobs = [[images[names[(k + j) % len(names)]] for j in range(1 + k % 2)] for k in range(12)]

    def send(k):
        mod, url = (http, triton.http_url) if k % 2 else (grpc, triton.grpc_url)
        return infer(mod, url, "prep_two_instances", jobs[k])

    with cf.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(send, range(len(jobs))))
    for k, data in enumerate(jobs):
        for i, b in enumerate(data):
            np.testing.assert_array_equal(results[k][i], reference.hf_clip(b)[0],
                                          err_msg=f"request {k} image {i}")
    client = http.InferenceServerClient(triton.http_url)
    cfg = client.get_model_config("prep_two_instances")
    assert cfg["instance_group"][0]["count"] == 2


def test_undecodable_and_malformed_inputs_are_named(triton, images):
    with pytest.raises(InferenceServerException, match=r"image 0: unsupported_format:"):
        infer(http, triton.http_url, "clip_preprocess", [b"P6 not an image at all (PPM is not a supported format)"])
    with pytest.raises(InferenceServerException, match=r"image 2: invalid_image:"):
        infer(grpc, triton.grpc_url, "clip_preprocess",
              [images["png_224x224"], images["png_224x224"], images["png_224x224"][:100]])
    # prep_small: parameter max_pixels 100000; 640x480 is over it, 224x224 is not
    with pytest.raises(InferenceServerException,
                       match=r"image 1: image_too_large: image is 640x480 = 307200 pixels"):
        infer(http, triton.http_url, "prep_small", [images["png_224x224"], images["jpeg_640x480"]])
    # an absurd aspect ratio (1 x 6400000: clip-224 would resize it to 224 x 1433600000) is
    # refused from the header, as the daemon refuses it
    line = io.BytesIO()
    Image.new("RGB", (1, 6400000), (10, 200, 30)).save(line, "PNG")
    with pytest.raises(InferenceServerException,
                       match=r"image 0: image_too_large: aspect ratio too extreme"):
        infer(grpc, triton.grpc_url, "clip_preprocess", [line.getvalue()])
    got = infer(http, triton.http_url, "prep_small", [images["png_224x224"]])
    np.testing.assert_array_equal(got[0], reference.hf_clip(images["png_224x224"])[0])


@pytest.mark.parametrize("params, dims, kind, message", [
    ({"reference": "transformers6"}, (3, 224, 224), "KIND_CPU",
     'parameter reference: "transformers6" is not one of'),
    ({"profile": "no-such-profile"}, (3, 224, 224), "KIND_CPU", 'no profile "no-such-profile"'),
    ({"profile": "clip-336"}, (3, 224, 224), "KIND_CPU", "differ from profile clip-336"),
    ({"exif": "maybe"}, (3, 224, 224), "KIND_CPU", "parameter exif: expected true or false"),
    ({"mode": "quick"}, (3, 224, 224), "KIND_CPU", "parameter mode: expected exact or fast"),
    ({"profle": "clip-224"}, (3, 224, 224), "KIND_CPU", 'unknown parameter "profle"'),
    ({}, (224, 224), "KIND_CPU", "dims must be [ 3, H, W ]"),
    # (KIND_GPU: on a machine without a GPU Triton refuses it before the backend sees it;
    # the backend's KIND_GPU path is tested by tests/triton/mock_triton.c, make test-triton-mock)
], ids=["reference", "profile", "dims-vs-profile", "exif", "mode", "typo", "dims"])
def test_misconfigured_models_refuse_to_load_saying_why(triton, params, dims, kind, message):
    name = "bad_" + re.sub(r"\W", "_", message)[:40]
    d = triton.model_repo / name
    (d / "1").mkdir(parents=True, exist_ok=True)
    ps = ",\n".join(f'{{ key: "{k}" value: {{ string_value: "{v}" }} }}' for k, v in params.items())
    (d / "config.pbtxt").write_text(
        f'backend: "clipprep"\nmax_batch_size: 4\n'
        f'input [ {{ name: "images", data_type: TYPE_STRING, dims: [ 1 ] }} ]\n'
        f'output [ {{ name: "pixel_values", data_type: TYPE_FP32, dims: [ {", ".join(map(str, dims))} ] }} ]\n'
        f'instance_group [ {{ kind: {kind}, count: 1 }} ]\n' + (f"parameters [ {ps} ]\n" if ps else ""))
    client = http.InferenceServerClient(triton.http_url)
    with pytest.raises(InferenceServerException) as e:
        client.load_model(name)
    assert message in e.value.message(), e.value.message()
    assert not client.is_model_ready(name)


@pytest.mark.parametrize("ref", ["transformers5", "transformers5-pil", "open_clip"])
def test_reference_parameter_gives_the_daemons_tensor(triton, daemon, images, ref):
    """parameters { reference }: the backend runs that reference's arithmetic, the same tensor
    the daemon answers for reference= (each proven against its library in tests/reference)."""
    name = "prep_" + ref.replace("-", "_")
    d = triton.model_repo / name
    (d / "1").mkdir(parents=True, exist_ok=True)
    (d / "config.pbtxt").write_text(
        'backend: "clipprep"\nmax_batch_size: 8\n'
        'input [ { name: "images", data_type: TYPE_STRING, dims: [ 1 ] } ]\n'
        'output [ { name: "pixel_values", data_type: TYPE_FP32, dims: [ 3, 224, 224 ] } ]\n'
        'instance_group [ { kind: KIND_CPU, count: 1 } ]\n'
        f'parameters [ {{ key: "reference" value: {{ string_value: "{ref}" }} }} ]\n')
    client = http.InferenceServerClient(triton.http_url)
    try:
        client.load_model(name)
    finally:
        client.close()
    data = [images[n] for n in MIXED]
    got = infer(http, triton.http_url, name, data)
    want = daemon_tensor(daemon, data, profile="clip-224", reference=ref)
    np.testing.assert_array_equal(got, want)
    # the transparent PNG really is handled differently from transformers4
    assert not np.array_equal(want, daemon_tensor(daemon, data, profile="clip-224",
                                                  reference="transformers4"))


def test_without_reference_parameter_the_profiles_default_reference_applies(triton, daemon,
                                                                            images):
    """prep_openclip: profile openclip-224, no reference parameter: open_clip's arithmetic (the
    profile's default_reference), as the daemon answers for that profile without reference=."""
    data = [images[n] for n in MIXED]
    got = infer(grpc, triton.grpc_url, "prep_openclip", data)
    np.testing.assert_array_equal(got, daemon_tensor(daemon, data, profile="openclip-224"))
    np.testing.assert_array_equal(got, daemon_tensor(daemon, data, profile="openclip-224",
                                                     reference="open_clip"))
