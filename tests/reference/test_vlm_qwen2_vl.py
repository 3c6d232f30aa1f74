"""The qwen2_vl family (server/vlm/qwen2_vl.c) against transformers 5.23's Qwen2VLImageProcessor
(torchvision, reference=transformers5) and Qwen2VLImageProcessorPil (reference=transformers5-pil),
the processor of Qwen2-VL, Qwen2.5-VL and Qwen3-VL.

The processors are built from the models' preprocessor_config.json as published (written
below; no download). Checked: every array of /v1/preprocess (format=npz) equals the library's
on one call with the same list of images (pixel_values float32 max |diff| <= 1e-6, float16
equal to the reference's astype(float16), image_grid_thw equal), for both presets, both
backends, photos, modes (alpha, gray, palette, CMYK, 16-bit) and sizes (1x1, 2x3, aspect
exactly 200, strips, upscales); a small profile that takes smart_resize's max_pixels branch
with other merge/temporal sizes and bilinear; the profile import of the published configs
gives the presets; /v1/plan equals what the library produced; the > 200 aspect refusal is a
400 naming the image, with the library's message."""
from __future__ import annotations

import io
import json
import subprocess
import warnings

import numpy as np
import pytest
from PIL import Image
from transformers import Qwen2VLImageProcessor, Qwen2VLImageProcessorPil

import images
from conftest import PROFILES_DIR, _start, assert_error, base_config, describe_error

# Qwen/Qwen2-VL-7B-Instruct (and every Qwen2-VL / Qwen2.5-VL size: the same values)
QWEN2_VL_CONFIG = {
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen2VLProcessor",
}
# Qwen/Qwen3-VL-8B-Instruct (every Qwen3-VL size: the same values)
QWEN3_VL_CONFIG = {
    "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "processor_class": "Qwen3VLProcessor",
    "image_processor_type": "Qwen2VLImageProcessorFast",
}
# Not a published model: smart_resize's max_pixels branch on ordinary photos, merge 3,
# temporal 3, bilinear, another rescale/mean/std (the family's other settings).
SMALL_CONFIG = {
    "min_pixels": 2000,
    "max_pixels": 60000,
    "patch_size": 8,
    "temporal_patch_size": 3,
    "merge_size": 3,
    "resample": 2,
    "rescale_factor": 0.00392156862745098,
    "image_mean": [0.5, 0.4, 0.3],
    "image_std": [0.2, 0.25, 0.3],
    "image_processor_type": "Qwen2VLImageProcessor",
}
# do_rescale / do_normalize false (merge 1, temporal 1)
FLAGS_BASE = {"min_pixels": 2000, "max_pixels": 60000, "patch_size": 8, "temporal_patch_size": 1,
              "merge_size": 1, "image_processor_type": "Qwen2VLImageProcessor"}
FLAG_CONFIGS = {"t-qwen-norescale": {**FLAGS_BASE, "do_rescale": False},
                "t-qwen-nonorm": {**FLAGS_BASE, "do_normalize": False},
                "t-qwen-neither": {**FLAGS_BASE, "do_rescale": False, "do_normalize": False}}
CONFIGS = {"qwen2-vl": QWEN2_VL_CONFIG, "qwen3-vl": QWEN3_VL_CONFIG, "t-qwen-small": SMALL_CONFIG,
           **FLAG_CONFIGS}
REFERENCES = {"transformers5": Qwen2VLImageProcessor, "transformers5-pil": Qwen2VLImageProcessorPil}
ARRAYS = ("pixel_values", "image_grid_thw")


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _strip(w: int, h: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    base = np.asarray(images.photo("coffee.png").convert("RGB").resize((max(w, 2), max(h, 2))))
    a = base[:h, :w].astype(np.int16) + rng.integers(-20, 21, (h, w, 3))
    return _png(Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB"))


CORPUS = ["astronaut_640x480_q90_420.jpg", "coffee_1000x667_q90_420.jpg", "rocket_333x500.png",
          "motorcycle_741x500.png", "chelsea_1920x1080_q90_420.jpg", "px_1x1.png", "px_1x1.jpg",
          "odd_17x9.jpg", "strip_3000x20.jpg", "strip_20x3000.png", "up_100x100.png",
          "checker_333x251.png", "gray_500x333.png", "cmyk_640x480.jpg",
          "palette_trns_640x480.png", "rgba_640x480.png", "la_500x333.png", "gray16_640x480.png",
          "webp_lossy_alpha_500x333.webp"]


def batch_items() -> list[tuple[str, bytes]]:
    """One batch of mixed sizes: the corpus picks and generated sizes at the edges of
    smart_resize (tiny, aspect exactly 200, a side rounding to 0 patches)."""
    items = [(n, images.get(n).data) for n in CORPUS]
    items += [("gen_2x3.png", _strip(2, 3, 1)), ("gen_1x200.png", _strip(1, 200, 2)),
              ("gen_200x1.png", _strip(200, 1, 3)), ("gen_13x2600.png", _strip(13, 2600, 4)),
              ("gen_700x5.png", _strip(700, 5, 5))]
    return items


def _open(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def processor(profile: str, reference: str):
    cfg = {k: v for k, v in CONFIGS[profile].items()
           if k not in ("image_processor_type", "processor_class")}
    return REFERENCES[reference](**cfg)


_REF_CACHE: dict = {}


def reference_arrays(profile: str, reference: str, items) -> dict:
    """The library's arrays for one call on the list (cached per profile/reference/list)."""
    key = (profile, reference, tuple(n for n, _ in items))
    if key not in _REF_CACHE:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = processor(profile, reference)([_open(d) for _, d in items], return_tensors="np")
        _REF_CACHE[key] = {k: np.asarray(out[k]) for k in ARRAYS}
    return _REF_CACHE[key]


def _npz(r) -> dict:
    assert r.status_code == 200, describe_error(r)
    z = np.load(io.BytesIO(r.content))
    assert z.files == list(ARRAYS), z.files
    return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def qdaemon(request, tmp_path_factory):
    """profiles_dir: the two presets, the published configs as model folders (imported at
    start) and the small test profile as a preprocessor_config.json."""
    root = tmp_path_factory.mktemp("qwen2vl")
    prof = root / "profiles"
    prof.mkdir()
    for name in ("qwen2-vl", "qwen3-vl"):
        (prof / f"{name}.json").write_text((PROFILES_DIR / f"{name}.json").read_text())
    for name, cfg in (("hf-qwen2-vl", QWEN2_VL_CONFIG), ("hf-qwen3-vl", QWEN3_VL_CONFIG)):
        (prof / name).mkdir()
        (prof / name / "preprocessor_config.json").write_text(json.dumps(cfg))
    for name in ("t-qwen-small", *FLAG_CONFIGS):
        (prof / f"{name}.json").write_text(json.dumps(CONFIGS[name]))
    d = _start(request, root / "daemon",
               base_config(profiles_dir=str(prof), default_profile="qwen2-vl"))
    yield d
    assert d.alive(), f"daemon died during the tests\n{d.stderr_tail()}"
    assert d.stop() == 0, d.stderr_tail()


def post(d, items, profile, reference, **kw):
    return d.post_batch(items, profile=profile, params={"reference": reference}, **kw)


# ---- every array, bit-exact ------------------------------------------------------------------

@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("profile", ["qwen2-vl", "qwen3-vl", "t-qwen-small"])
def test_batch_bit_exact(qdaemon, profile, reference):
    items = batch_items()
    got = _npz(post(qdaemon, items, profile, reference))
    want = reference_arrays(profile, reference, items)
    assert got["image_grid_thw"].dtype == np.int64
    assert np.array_equal(got["image_grid_thw"], want["image_grid_thw"])
    g, w = got["pixel_values"], want["pixel_values"]
    assert g.dtype == np.float32 and g.shape == w.shape, (g.shape, w.shape)
    # per image, to name the one that differs
    bad, row = [], 0
    for (name, _), (_, gh, gw) in zip(items, want["image_grid_thw"]):
        n = int(gh * gw)
        d = float(np.abs(g[row:row + n] - w[row:row + n]).max())
        if d > 1e-6:
            bad.append(f"{name}: max|diff| {d:.4g}")
        row += n
    assert not bad, f"{profile} / {reference}:\n" + "\n".join(bad)


@pytest.mark.parametrize("reference", REFERENCES)
def test_float16_is_the_reference_astype(qdaemon, reference):
    items = [it for it in batch_items() if it[0] in (
        "astronaut_640x480_q90_420.jpg", "px_1x1.png", "rgba_640x480.png", "gray16_640x480.png",
        "gen_2x3.png", "gen_1x200.png", "checker_333x251.png")]
    got = _npz(post(qdaemon, items, "qwen3-vl", reference, dtype="float16"))
    want = reference_arrays("qwen3-vl", reference, items)
    assert got["pixel_values"].dtype == np.float16
    assert np.array_equal(got["pixel_values"].view(np.uint16),
                          want["pixel_values"].astype(np.float16).view(np.uint16))
    assert np.array_equal(got["image_grid_thw"], want["image_grid_thw"])


@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("profile", FLAG_CONFIGS)
def test_without_rescale_or_normalize(qdaemon, profile, reference):
    """Values as the library's; with neither step the torchvision backend returns uint8
    pixel_values (the daemon answers the same values as float32)."""
    items = [(n, images.get(n).data) for n in ("astronaut_640x480_q90_420.jpg",
                                               "rgba_640x480.png", "odd_17x9.jpg")]
    got = _npz(post(qdaemon, items, profile, reference))
    want = reference_arrays(profile, reference, items)
    assert got["pixel_values"].dtype == np.float32 and got["pixel_values"].shape == \
        want["pixel_values"].shape
    d = np.abs(got["pixel_values"].astype(np.float64) - want["pixel_values"]).max()
    assert d <= 1e-6, d
    assert np.array_equal(got["image_grid_thw"], want["image_grid_thw"])


def test_single_image_and_imported_profiles_answer_alike(qdaemon):
    """One image (not a batch); the published configs imported as model folders answer the
    presets' bytes."""
    data = images.get("coffee_1000x667_q90_420.jpg").data
    for preset in ("qwen2-vl", "qwen3-vl"):
        a = qdaemon.post(data, profile=preset)
        b = qdaemon.post(data, profile=f"hf-{preset}")
        assert a.status_code == 200 and b.status_code == 200, describe_error(a) + describe_error(b)
        assert a.content == b.content
        want = reference_arrays(preset, "transformers5", [("c", data)])
        got = _npz(a)
        assert np.array_equal(got["image_grid_thw"], want["image_grid_thw"])
        assert float(np.abs(got["pixel_values"] - want["pixel_values"]).max()) <= 1e-6


# ---- /v1/plan ----------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["qwen2-vl", "qwen3-vl", "t-qwen-small"])
def test_plan_equals_the_library(qdaemon, profile):
    items = batch_items()
    want = reference_arrays(profile, "transformers5", items)
    r = qdaemon.session.post(qdaemon.url + "/v1/plan", params={"profile": profile},
                             files=[(f"i{k}", d) for k, (_, d) in enumerate(items)])
    assert r.status_code == 200, describe_error(r)
    j = r.json()
    cfg = CONFIGS[profile]
    p, m = cfg["patch_size"], cfg["merge_size"]
    assert [im["index"] for im in j["images"]] == list(range(len(items)))
    for im, thw in zip(j["images"], want["image_grid_thw"].tolist()):
        assert im["image_grid_thw"] == thw
        assert im["vision_tokens"] == thw[1] * thw[2] // (m * m)
        rh, rw = thw[1] * p, thw[2] * p
        assert im["tiles"] == [{"resized": [rh, rw], "window": [0, 0, rh, rw]}]
    assert j["arrays"] == [
        {"name": "pixel_values", "shape": list(want["pixel_values"].shape), "dtype": "float32"},
        {"name": "image_grid_thw", "shape": list(want["image_grid_thw"].shape), "dtype": "int64"}]


# ---- refusals ----------------------------------------------------------------------------------

def test_aspect_over_200_is_refused_naming_the_image(qdaemon):
    ok = images.get("odd_17x9.jpg").data
    for w, h in ((1, 201), (603, 3)):
        bad = _strip(w, h, 9)
        with pytest.raises(ValueError) as lib:
            processor("qwen2-vl", "transformers5")(_open(bad), return_tensors="np")
        for path in ("/v1/preprocess", "/v1/plan"):
            r = qdaemon.session.post(qdaemon.url + path, params={"profile": "qwen2-vl"},
                                     files=[("a", ok), ("b", ok), ("c", bad)])
            err = assert_error(r, 400, "invalid_image", index=2)
            assert str(lib.value) in err["message"], (err, str(lib.value))


def test_import_of_published_configs_gives_the_presets(run_cli, tmp_path):
    for preset, cfg in (("qwen2-vl", QWEN2_VL_CONFIG), ("qwen3-vl", QWEN3_VL_CONFIG)):
        path = tmp_path / f"{preset}.json"
        path.write_text(json.dumps(cfg))
        r = run_cli(["profile", "import", str(path)])
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout)
        want = json.loads((PROFILES_DIR / f"{preset}.json").read_text())
        for k in ("vlm", "resample", "rescale_factor", "mean", "std", "exif"):
            assert got[k] == want[k], (preset, k, got[k], want[k])


@pytest.mark.parametrize("change, key", [
    ({"do_resize": False}, "do_resize"),
    ({"size": {"height": 448, "width": 448}}, "size.height"),
    ({"size": {"shortest_edge": 3136}}, "longest_edge"),  # the processor raises on it
    ({"resample": 1}, "resample"),
    ({"min_pixels": 0}, "min_pixels"),
    ({"merge_size": 2.5}, "merge_size"),
    ({"do_center_crop": True}, "do_center_crop"),
])
def test_import_refuses_what_it_cannot_reproduce(run_cli, tmp_path, change, key):
    cfg = {k: v for k, v in QWEN2_VL_CONFIG.items() if k not in ("min_pixels", "max_pixels")}
    cfg.update(change)
    path = tmp_path / "preprocessor_config.json"
    path.write_text(json.dumps(cfg))
    r = run_cli(["profile", "import", str(path)])
    assert r.returncode != 0 and key in r.stderr, (r.returncode, r.stdout, r.stderr)


def test_library_refuses_a_size_without_longest_edge():
    """(the import refusal above follows the library)"""
    cfg = {k: v for k, v in QWEN2_VL_CONFIG.items()
           if k not in ("min_pixels", "max_pixels", "image_processor_type", "processor_class")}
    proc = Qwen2VLImageProcessor(size={"shortest_edge": 3136}, **cfg)
    with pytest.raises(ValueError, match="longest_edge"):
        proc(Image.new("RGB", (64, 64)), return_tensors="np")


def test_presets_name_their_models():
    for preset, family in (("qwen2-vl", ("Qwen2-VL", "Qwen2.5-VL")), ("qwen3-vl", ("Qwen3-VL",))):
        models = json.loads((PROFILES_DIR / f"{preset}.json").read_text())["models"]
        assert models and all(m.startswith("Qwen/") for m in models)
        assert {f for f in family if any(f + "-" in m for m in models)} == set(family)


# ---- the other ways of asking ------------------------------------------------------------------

def test_json_and_v2_answers_carry_the_same_arrays(qdaemon):
    items = [("a", images.get("odd_17x9.jpg").data), ("b", images.get("px_1x1.png").data)]
    want = _npz(post(qdaemon, items, "qwen2-vl", "transformers5"))
    r = post(qdaemon, items, "qwen2-vl", "transformers5", format="json")
    assert r.status_code == 200, describe_error(r)
    arrays = {a["name"]: a for a in r.json()["arrays"]}
    assert list(arrays) == list(ARRAYS)
    for k in ARRAYS:
        assert arrays[k]["dtype"] == str(want[k].dtype) and arrays[k]["shape"] == list(want[k].shape)
        got = np.array(arrays[k]["data"], dtype=want[k].dtype).reshape(want[k].shape)
        assert np.array_equal(got, want[k]), k

    # KServe v2: BYTES input in the binary extension, outputs as JSON data
    blob = b"".join(len(d).to_bytes(4, "little") + d for _, d in items)
    head = json.dumps({"inputs": [{"name": "images", "shape": [len(items)], "datatype": "BYTES",
                                   "parameters": {"binary_data_size": len(blob)}}]}).encode()
    r = qdaemon.session.post(qdaemon.url + "/v2/models/qwen2-vl/infer", data=head + blob,
                             headers={"Inference-Header-Content-Length": str(len(head)),
                                      "Content-Type": "application/octet-stream"})
    assert r.status_code == 200, describe_error(r)
    outs = {o["name"]: o for o in r.json()["outputs"]}
    assert set(outs) == set(ARRAYS)
    for k in ARRAYS:
        o = outs[k]
        assert o["shape"] == list(want[k].shape)
        got = np.array(o["data"], dtype=want[k].dtype).reshape(want[k].shape)
        assert np.array_equal(got, want[k]), k
    meta = qdaemon.get("/v2/models/qwen2-vl").json()
    assert [o["name"] for o in meta["outputs"]] == list(ARRAYS)


def test_native_profile_keys(run_cli, tmp_path):
    """The "vlm" object: the import output loads back unchanged; unknown keys and values out
    of range are refused naming them."""
    preset = json.loads((PROFILES_DIR / "qwen3-vl.json").read_text())
    path = tmp_path / "qwen3-vl.json"
    path.write_text(json.dumps(preset))
    r = run_cli(["profile", "import", str(path)])
    assert r.returncode == 0, r.stderr
    once = json.loads(r.stdout)
    path.write_text(json.dumps(once))
    r = run_cli(["profile", "import", str(path)])
    assert r.returncode == 0 and json.loads(r.stdout) == once, r.stderr
    for vlm, key in (({"patch": 14}, "vlm.patch"), ({"merge_size": 0}, "merge_size"),
                     ({"min_pixels": "3136"}, "min_pixels"), ({"temporal_patch_size": 1.5},
                                                                "temporal_patch_size")):
        bad = dict(preset, vlm={**preset["vlm"], **vlm})
        path.write_text(json.dumps(bad))
        r = run_cli(["profile", "import", str(path)])
        assert r.returncode != 0 and key in r.stderr, (vlm, r.stdout, r.stderr)
