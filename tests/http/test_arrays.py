"""The named-array answers every profile has (issue #18's framework): format=npz (NumPy's own
np.load reads it, CRCs checked by zipfile), POST /v1/plan (the plan /v1/preprocess follows,
from headers alone) and the errors around them. The vision-language families are checked
against transformers in tests/reference/test_vlm_*.py."""
import io
import zipfile

import numpy as np

import images
from conftest import assert_error, decode_npy, describe_error

PHOTO = "astronaut_640x480_q90_420.jpg"


def _npz(r):
    assert r.status_code == 200, describe_error(r)
    assert r.headers["Content-Type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    assert zf.testzip() is None  # every member's CRC is right
    return np.load(io.BytesIO(r.content))


def test_npz_holds_pixel_values_equal_to_npy(daemon):
    parts = [images.get(PHOTO).data, images.get("odd_17x9.jpg").data]
    want = decode_npy(daemon.post_batch(parts).content)
    for dtype in ("float32", "float16"):
        z = _npz(daemon.post_batch(parts, format="npz", dtype=dtype))
        assert z.files == ["pixel_values"]
        got = z["pixel_values"]
        assert got.dtype == np.dtype(dtype) and got.shape == want.shape
        assert np.array_equal(got, want.astype(dtype))


def test_npz_single_image_and_header(daemon):
    r = daemon.post(images.get(PHOTO).data, format="npz", profile="clip-336")
    z = _npz(r)
    assert r.headers["X-Tensor-Shape"] == "1,3,336,336"
    assert z["pixel_values"].shape == (1, 3, 336, 336)


def test_plan_matches_what_preprocess_does(daemon):
    parts = [images.get(PHOTO).data, images.get("odd_17x9.jpg").data]
    r = daemon.session.post(daemon.url + "/v1/plan", params={"profile": "clip-336"},
                            files=[(f"i{k}", p) for k, p in enumerate(parts)])
    assert r.status_code == 200, describe_error(r)
    j = r.json()
    assert j["profile"] == "clip-336" and j["reference"]
    assert [im["index"] for im in j["images"]] == [0, 1]
    assert (j["images"][0]["width"], j["images"][0]["height"]) == (640, 480)
    assert (j["images"][1]["width"], j["images"][1]["height"]) == (17, 9)
    # 640x480 -> shortest edge 336: 448x336, centre window of 336
    assert j["images"][0]["tiles"] == [{"resized": [336, 448], "window": [0, 56, 336, 336]}]
    assert j["arrays"] == [{"name": "pixel_values", "shape": [2, 3, 336, 336],
                            "dtype": "float32"}]
    got = decode_npy(daemon.post_batch(parts, profile="clip-336").content)
    assert list(got.shape) == j["arrays"][0]["shape"]


def test_plan_refuses_what_preprocess_refuses(daemon):
    r = daemon.session.post(daemon.url + "/v1/plan", data=b"not an image",
                            headers={"Content-Type": "application/octet-stream"})
    assert_error(r, 415, "unsupported_format", index=0)
    r = daemon.session.get(daemon.url + "/v1/plan")
    assert r.status_code == 405


def test_unknown_format_names_npz(daemon):
    r = daemon.post(images.get(PHOTO).data, format="zip")
    assert_error(r, 400, "invalid_parameter")
    assert "npz" in r.json()["error"]["message"]
