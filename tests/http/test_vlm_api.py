"""Vision-language profiles through every answer format, consistent with each other: npz, json,
shm (each array at its offset in the leased slot), KServe v2 binary and JSON (tritonclient),
/v1/plan, and the errors particular to them. Exactness against transformers is in
tests/reference/test_vlm_*.py; this file has no torch and also runs under ASan."""
import io
import mmap
import os

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

import images
from conftest import assert_error, describe_error

# every shipped VLM preset (config/profiles/*.json with a "vlm" key)
VLM_PRESETS = ["siglip2-naflex", "qwen2-vl", "qwen3-vl", "internvl3", "llava-1.5",
               "llava-next"]
JSON_MAX_VALUES = 4_000_000  # a JSON answer of more values is huge (and slow under ASan)


def _rgba_png(w, h) -> bytes:
    from PIL import Image
    a = np.random.default_rng(7).integers(0, 256, (h, w, 4), dtype=np.uint8)
    b = io.BytesIO()
    Image.fromarray(a).save(b, "PNG")
    return b.getvalue()


# small images: every array stays small enough for JSON answers and the test shm pool
PARTS = [images.get("odd_17x9.jpg").data, images.get("px_1x1.png").data, _rgba_png(60, 40)]
SIZES = [(17, 9), (1, 1), (60, 40)]


@pytest.fixture
def daemon(daemon_factory):
    return daemon_factory({"shm_bytes": "256MiB"})


def _npz(r) -> dict:
    assert r.status_code == 200, describe_error(r)
    z = np.load(io.BytesIO(r.content))
    return {k: z[k] for k in z.files}


def _from_json(j) -> dict:
    out = {}
    for a in j["arrays"]:
        out[a["name"]] = np.array(a["data"], dtype=a["dtype"]).reshape(a["shape"])
    return out


def _from_shm(j) -> dict:
    fd = os.open("/dev/shm/" + j["shm"]["key"].lstrip("/"), os.O_RDONLY)
    try:
        m = mmap.mmap(fd, os.fstat(fd).st_size, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    base = j["shm"]["offset"]
    out = {}
    for a in j["arrays"]:
        assert a["offset"] % 64 == 0, a
        assert a["offset"] + a["byte_size"] <= j["shm"]["byte_size"], a
        raw = m[base + a["offset"]: base + a["offset"] + a["byte_size"]]
        out[a["name"]] = np.frombuffer(raw, dtype=a["dtype"]).reshape(a["shape"]).copy()
    m.close()
    return out


def _same(a: dict, b: dict):
    assert list(a) == list(b), (list(a), list(b))
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, (k, a[k].shape, b[k].shape)
        assert np.array_equal(a[k], b[k]), k


@pytest.mark.parametrize("profile", VLM_PRESETS)
def test_every_format_gives_the_same_arrays(daemon, profile, tmp_path):
    want = _npz(daemon.post_batch(PARTS, profile=profile))  # npz is the default
    assert list(want)[0] == "pixel_values"
    if sum(a.size for a in want.values()) < JSON_MAX_VALUES:
        _same(want, _from_json(daemon.post_batch(PARTS, profile=profile, format="json").json()))
    else:  # the JSON of the first image's arrays alone, against its npz
        _same(_npz(daemon.post(PARTS[1], profile=profile)),
              _from_json(daemon.post(PARTS[1], profile=profile, format="json").json()))
    r = daemon.post_batch(PARTS, profile=profile, format="shm")
    assert r.status_code == 200, describe_error(r)
    j = r.json()
    _same(want, _from_shm(j))
    assert daemon.session.delete(f"{daemon.url}/v1/leases/{j['lease']['id']}").status_code == 200
    half = _npz(daemon.post_batch(PARTS, profile=profile, dtype="float16"))
    assert half["pixel_values"].dtype == np.float16
    assert np.array_equal(half["pixel_values"], want["pixel_values"].astype(np.float16))
    for k in list(want)[1:]:
        assert np.array_equal(half[k], want[k])
    # one image alone gives its own part of the batch's arrays' first image (same geometry)
    single = _npz(daemon.post(PARTS[1], profile=profile))
    assert single["pixel_values"].shape[-1] == want["pixel_values"].shape[-1]


@pytest.mark.parametrize("profile", VLM_PRESETS)
def test_plan_gives_the_shapes_preprocess_answers(daemon, profile):
    r = daemon.session.post(daemon.url + "/v1/plan", params={"profile": profile},
                            files=[(f"i{k}", p) for k, p in enumerate(PARTS)])
    assert r.status_code == 200, describe_error(r)
    plan = r.json()
    got = _npz(daemon.post_batch(PARTS, profile=profile))
    assert [a["name"] for a in plan["arrays"]] == list(got)
    for a in plan["arrays"]:
        assert tuple(a["shape"]) == got[a["name"]].shape and a["dtype"] == str(got[a["name"]].dtype)
    assert [(i["width"], i["height"]) for i in plan["images"]] == SIZES
    for im in plan["images"]:
        assert im["tiles"] and all(len(t["resized"]) == 2 and len(t["window"]) == 4
                                   for t in im["tiles"])


@pytest.mark.parametrize("profile", VLM_PRESETS)
def test_kserve_v2_one_output_per_array(daemon, profile):
    want = _npz(daemon.post_batch(PARTS, profile=profile))
    c = httpclient.InferenceServerClient(f"{daemon.host}:{daemon.port}")
    meta = c.get_model_metadata(profile)
    assert [o["name"] for o in meta["outputs"]] == list(want)
    assert all(-1 in o["shape"] for o in meta["outputs"]), meta
    small = sum(a.size for a in want.values()) < JSON_MAX_VALUES
    for binary in (True, False) if small else (True,):
        inp = httpclient.InferInput("images", [len(PARTS)], "BYTES")
        inp.set_data_from_numpy(np.array(PARTS, dtype=np.object_), binary_data=True)
        outs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in want]
        res = c.infer(profile, [inp], outputs=outs)
        for n in want:
            assert np.array_equal(res.as_numpy(n), want[n]), (n, binary)
    inp = httpclient.InferInput("images", [1], "BYTES")
    inp.set_data_from_numpy(np.array(PARTS[:1], dtype=np.object_), binary_data=True)
    with pytest.raises(InferenceServerException, match="unknown output"):
        c.infer(profile, [inp], outputs=[httpclient.InferRequestedOutput("nope")])


@pytest.mark.parametrize("profile", VLM_PRESETS)
def test_what_a_vlm_profile_refuses(daemon, profile):
    img = PARTS[0]
    if profile == "llava-1.5":  # one array (pixel_values): npy is allowed
        r = daemon.post(img, profile=profile, format="npy")
        assert r.status_code == 200, describe_error(r)
        assert np.load(io.BytesIO(r.content)).shape == (1, 3, 336, 336)
    else:
        body = assert_error(daemon.post(img, profile=profile, format="npy"), 400,
                            "invalid_parameter")
        assert "npz" in body["message"], body
    assert_error(daemon.post(img, profile=profile, format="cuda_ipc"), 400, "invalid_parameter")
    assert_error(daemon.post(img, profile=profile, params={"mode": "fast"}), 400,
                 "invalid_parameter")
    assert_error(daemon.post(img, profile=profile, params={"reference": "transformers4"}), 400,
                 "invalid_parameter")
    assert_error(daemon.post_batch([img, b"junk"], profile=profile), 415, "unsupported_format",
                 index=1)


def test_classic_model_still_has_one_output(daemon):
    c = httpclient.InferenceServerClient(f"{daemon.host}:{daemon.port}")
    inp = httpclient.InferInput("images", [1], "BYTES")
    inp.set_data_from_numpy(np.array(PARTS[:1], dtype=np.object_), binary_data=True)
    with pytest.raises(InferenceServerException, match="only output is \"pixel_values\""):
        c.infer("clip-224", [inp], outputs=[httpclient.InferRequestedOutput("image_grid_thw")])


def test_llava_pad_canvas_counts_against_max_pixels(daemon_factory):
    """LLaVA-1.5 pastes the image on a max(w, h) square before resizing: that canvas is
    scratch memory of the decoded size, held to max_pixels like a decoded image."""
    d = daemon_factory({"max_pixels": 500_000})
    thin = images.get("thin_1000x3.png").data  # 3000 pixels, a 1000x1000 canvas
    body = assert_error(d.post(thin, profile="llava-1.5"), 413, "image_too_large", index=0)
    assert "1000x1000" in body["message"] and "max_pixels" in body["message"], body
    assert d.post(images.get("odd_17x9.jpg").data, profile="llava-1.5").status_code == 200
    assert d.post(thin, profile="siglip2-naflex").status_code == 200  # no canvas there
