"""InternVL (the got_ocr2 family, preset internvl3) against transformers 5.23's
GotOcr2ImageProcessor (torchvision, reference=transformers5) and GotOcr2ImageProcessorPil
(reference=transformers5-pil), built from OpenGVLab/InternVL3-1B-hf's published
preprocessor_config.json (written below; no download) and called with crop_to_patches=True, as
InternVLProcessor calls it.

Each request is a batch mixing sizes and modes; the library gets the same images as one call.
Every returned array is compared: pixel_values float32 max |diff| <= 1e-6, num_patches equal
(int64); float16 equal to the library's astype(float16). Inputs: photos, tiny (1x1, 2x3),
images that are exactly a tile canvas (the library's resize is then an identity), square and
2:1 images on both sides of the grid tie-break (area > 0.5 * tiles * 448^2), extreme aspect
ratios (the grid clamps at 12x1 / 1x12; the library refuses none), alpha, gray, palette, CMYK.
Also: the profile import of the published config gives the preset's settings, POST /v1/plan
equals the library's grid, counts and shapes, and KServe v2 answers both arrays."""
from __future__ import annotations

import functools
import io
import json
import struct
import subprocess
import warnings

import numpy as np
import pytest
from PIL import Image

import images
from conftest import PROFILES_DIR, base_config, describe_error

PROFILE = "internvl3"
REFERENCES = ("transformers5", "transformers5-pil")
TILE = 448

# OpenGVLab/InternVL3-1B-hf preprocessor_config.json, as published
HF_INTERNVL3 = {
    "crop_size": None,
    "crop_to_patches": False,
    "data_format": "channels_first",
    "default_to_square": True,
    "device": None,
    "disable_grouping": None,
    "do_center_crop": None,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_processor_type": "GotOcr2ImageProcessorFast",
    "image_std": [0.229, 0.224, 0.225],
    "input_data_format": None,
    "max_patches": 12,
    "min_patches": 1,
    "processor_class": "InternVLProcessor",
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "return_tensors": None,
    "size": {"height": 448, "width": 448},
}


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _photo(name: str, w: int, h: int) -> bytes:
    return _png(images.photo(name).convert("RGB").resize((w, h), Image.Resampling.LANCZOS))


def _generated() -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(18)
    return [
        ("px_2x3.png", _png(Image.fromarray(rng.integers(0, 256, (3, 2, 3), dtype=np.uint8)))),
        # exactly a tile canvas: the library's resize is an identity (tiles are crops)
        ("canvas_448x448.png", _photo("chelsea.png", 448, 448)),         # 1x1, no thumbnail
        ("canvas_896x896.png", _photo("astronaut.png", 896, 896)),       # 2x2 + thumbnail
        ("canvas_1344x448.png", _photo("coffee.png", 1344, 448)),        # 3x1 + thumbnail
        # grid ties (same aspect difference): more tiles while area > 0.5 * tiles * 448^2
        ("square_633x633.png", _photo("rocket.jpg", 633, 633)),          # 400689: 1x1
        ("square_634x634.png", _photo("rocket.jpg", 634, 634)),          # 401956: 2x2
        ("square_951x951.png", _photo("coffee.png", 951, 951)),          # 904401: 3x3
        ("wide_1000x500.png", _photo("chelsea.png", 1000, 500)),         # 2x1
        ("wide_1400x700.png", _photo("chelsea.png", 1400, 700)),         # 4x2
        # extreme aspect ratios: the grid clamps at 12 tiles in a row
        ("strip_5000x7.png", _photo("astronaut.png", 5000, 7)),
        ("strip_9x2000.png", _photo("coffee.png", 9, 2000)),
    ]


CORPUS_NAMES = [
    # photos
    "astronaut_640x480_q90_420.jpg", "coffee_1000x667.png", "chelsea_1920x1080_q90_420.jpg",
    "rocket_333x500_q90_420.jpg", "motorcycle_741x500.png", "retina_orig.jpg",
    # edge cases
    "px_1x1.png", "px_1x1.jpg", "thin_3x1000.png", "thin_1000x3.png", "thin_300x1.png",
    "thin_1x300.png", "strip_3000x20.jpg", "strip_20x3000.png", "odd_17x9.png",
    "noise_640x480.png", "checker_333x251.png",
    # modes: alpha, gray, palette, CMYK
    "horse_orig.png", "rgba_640x480.png", "la_500x333.png", "camera_orig.png",
    "gray_640x480.jpg", "gray_trns_500x333.png", "palette_trns_640x480.png",
    "cmyk_640x480.jpg", "rgba16_333x500.png",
    # EXIF orientation 6: not applied (the profile's exif false; transformers ignores it)
    "exif_o6_640x480.jpg",
]
HUGE = "hubble_4000x3000_q90_420.jpg"
CHUNK = 6


@functools.lru_cache(maxsize=None)
def corpus() -> list[tuple[str, bytes]]:
    items = [(n, images.get(n).data) for n in CORPUS_NAMES] + _generated()
    items.append((HUGE, images.get(HUGE).data))
    return items


# --------------------------------------------------------------------------------------------
# The library
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def processors():
    from transformers import GotOcr2ImageProcessor, GotOcr2ImageProcessorPil
    return {"transformers5": GotOcr2ImageProcessor.from_dict(dict(HF_INTERNVL3)),
            "transformers5-pil": GotOcr2ImageProcessorPil.from_dict(dict(HF_INTERNVL3))}


def _open(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def library(proc, datas: list[bytes]) -> dict[str, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow: palette transparency as bytes
        out = proc([_open(d) for d in datas], crop_to_patches=True, return_tensors="np")
    return {k: np.asarray(v) for k, v in out.items()}


# --------------------------------------------------------------------------------------------
# The daemon
# --------------------------------------------------------------------------------------------

def daemon_arrays(daemon, datas: list[bytes], reference: str,
                  dtype: str = "float32") -> dict[str, np.ndarray]:
    r = daemon.post_batch(list(datas), profile=PROFILE, dtype=dtype, format="npz",
                          params={"reference": reference})
    assert r.status_code == 200, f"{PROFILE}/{reference}: {describe_error(r)}"
    with np.load(io.BytesIO(r.content), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _split(a: np.ndarray, counts) -> list[np.ndarray]:
    return np.split(a, np.cumsum(counts)[:-1])


def compare(got: dict, want: dict, names: list[str], what: str) -> list[str]:
    assert sorted(got) == sorted(want), (what, sorted(got), sorted(want))
    assert got["num_patches"].dtype == want["num_patches"].dtype == np.int64, what
    assert np.array_equal(got["num_patches"], want["num_patches"]), \
        (what, names, got["num_patches"], want["num_patches"])
    g, w = got["pixel_values"], want["pixel_values"]
    assert g.shape == w.shape and g.dtype == w.dtype, (what, g.shape, w.shape, g.dtype, w.dtype)
    bad = []
    for name, gi, wi in zip(names, _split(g, want["num_patches"]), _split(w, want["num_patches"])):
        d = float(np.abs(gi.astype(np.float64) - wi).max())
        if d > 1e-6:
            bad.append(f"{name} ({len(wi)} tiles): max|diff| {d:.4g}")
    return bad


# --------------------------------------------------------------------------------------------
# Bit-exact
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reference", REFERENCES)
def test_bit_exact_float32_mixed_batches(daemon, processors, reference):
    items = corpus()
    bad, tiles = [], 0
    for i in range(0, len(items), CHUNK):
        chunk = items[i:i + CHUNK]
        names, datas = [n for n, _ in chunk], [d for _, d in chunk]
        want = library(processors[reference], datas)
        tiles += len(want["pixel_values"])
        bad += compare(daemon_arrays(daemon, datas, reference), want, names, reference)
    assert tiles > 3 * len(items)  # tiling did happen
    assert not bad, f"{reference}: {len(bad)} of {len(items)} differ\n" + "\n".join(bad)


@pytest.mark.parametrize("reference", REFERENCES)
def test_float16_is_the_library_astype(daemon, processors, reference):
    names = ["rgba_640x480.png", "gray_640x480.jpg", "px_1x1.png", "thin_1000x3.png",
             "noise_640x480.png"]
    datas = [images.get(n).data for n in names]
    want = library(processors[reference], datas)
    got = daemon_arrays(daemon, datas, reference, dtype="float16")
    assert got["pixel_values"].dtype == np.float16
    assert np.array_equal(got["num_patches"], want["num_patches"])
    w16 = want["pixel_values"].astype(np.float16)
    assert got["pixel_values"].shape == w16.shape
    assert np.array_equal(got["pixel_values"].view(np.uint16), w16.view(np.uint16)), reference


def test_library_facts_the_family_relies_on(processors):
    """What got_ocr2.c reproduces: the grid rule's tie-breaking and clamping, the thumbnail
    last, the tile order, and GOT-OCR2's crop_to_patches=False as max_patches=1."""
    from transformers.models.got_ocr2.image_processing_got_ocr2 import get_optimal_tiled_canvas
    g = lambda w, h: get_optimal_tiled_canvas((h, w), (TILE, TILE), 1, 12)  # noqa: E731
    assert g(633, 633) == (1, 1) and g(634, 634) == (2, 2) and g(951, 951) == (3, 3)
    assert g(1000, 500) == (2, 1) and g(1400, 700) == (4, 2)
    assert g(5000, 7) == (12, 1) and g(9, 2000) == (1, 12) and g(800, 300) == (5, 2)
    im = _open(_photo("chelsea.png", 900, 450))
    for proc in processors.values():
        out = proc(im, crop_to_patches=True, return_tensors="np")
        assert list(out["num_patches"]) == [3]
        pv = out["pixel_values"]
        thumb = proc(im, crop_to_patches=False, return_tensors="np")["pixel_values"]
        assert np.array_equal(pv[2], thumb[0])  # the thumbnail is the plain resize, last
        one = proc(im, crop_to_patches=True, max_patches=1, return_tensors="np")["pixel_values"]
        assert np.array_equal(one, thumb)


# --------------------------------------------------------------------------------------------
# POST /v1/plan
# --------------------------------------------------------------------------------------------

def _plan(daemon, datas: list[bytes], reference: str) -> dict:
    r = daemon.session.post(daemon.url + "/v1/plan",
                            params={"profile": PROFILE, "reference": reference},
                            files=[(f"i{k}", d) for k, d in enumerate(datas)])
    assert r.status_code == 200, describe_error(r)
    return r.json()


def _image_seq_length() -> int:
    import inspect
    from transformers import InternVLProcessor
    return inspect.signature(InternVLProcessor.__init__).parameters["image_seq_length"].default


PLAN_SIZES = ([(w, w) for w in range(625, 645)] + [(w, w) for w in range(945, 955)]
              + [(2 * h, h) for h in (440, 448, 633, 634, 635, 700)]
              + [(4000, 3000), (3000, 4000), (1, 1), (2, 3), (1, 6000), (6000, 1), (7000, 5),
                 (448, 448), (896, 896), (1344, 448), (800, 300), (333, 500), (1920, 1080)]
              + [tuple(int(v) for v in np.random.default_rng(18).integers(1, 5000, 2))
                 for _ in range(60)])


def test_plan_equals_the_library_grid_and_counts(daemon, processors):
    """Header-only images of many sizes (grid ties, extremes): the tile grid is
    get_optimal_tiled_canvas's, num_patches the library's get_number_of_image_patches,
    vision_tokens InternVLProcessor's image_seq_length per tile, the tiles the grid's windows."""
    from transformers.models.got_ocr2.image_processing_got_ocr2 import get_optimal_tiled_canvas
    seq = _image_seq_length()
    j = _plan(daemon, [images.png_header_only(w, h) for w, h in PLAN_SIZES], "transformers5")
    assert len(j["images"]) == len(PLAN_SIZES)
    total = 0
    for (w, h), im in zip(PLAN_SIZES, j["images"]):
        what = f"{w}x{h}"
        assert (im["width"], im["height"]) == (w, h), what
        cols, rows = get_optimal_tiled_canvas((h, w), (TILE, TILE), 1, 12)
        n = processors["transformers5"].get_number_of_image_patches(
            h, w, {"crop_to_patches": True})
        assert n == processors["transformers5-pil"].get_number_of_image_patches(
            h, w, {"crop_to_patches": True})
        assert im["tile_grid"] == {"columns": cols, "rows": rows, "thumbnail": n > 1}, what
        assert im["num_patches"] == n and im["vision_tokens"] == n * seq, what
        want = [{"resized": [rows * TILE, cols * TILE],
                 "window": [(t // cols) * TILE, (t % cols) * TILE, TILE, TILE]}
                for t in range(cols * rows)]
        if n > 1:
            want.append({"resized": [TILE, TILE], "window": [0, 0, TILE, TILE]})
        assert im["tiles"] == want, what
        total += n
    assert j["arrays"] == [
        {"name": "pixel_values", "shape": [total, 3, TILE, TILE], "dtype": "float32"},
        {"name": "num_patches", "shape": [len(PLAN_SIZES)], "dtype": "int64"}]


@pytest.mark.parametrize("reference", REFERENCES)
def test_plan_arrays_are_the_shapes_the_library_returns(daemon, processors, reference):
    items = corpus()[::3]
    datas = [d for _, d in items]
    want = library(processors[reference], datas)
    j = _plan(daemon, datas, reference)
    assert j["reference"] == reference
    assert [im["num_patches"] for im in j["images"]] == list(want["num_patches"])
    assert j["arrays"] == [
        {"name": k, "shape": list(want[k].shape), "dtype": str(want[k].dtype)}
        for k in ("pixel_values", "num_patches")]


# --------------------------------------------------------------------------------------------
# KServe v2
# --------------------------------------------------------------------------------------------

def test_v2_infer_answers_every_array(daemon, processors):
    r = daemon.get(f"/v2/models/{PROFILE}")
    assert r.status_code == 200, describe_error(r)
    assert r.json()["outputs"] == [
        {"name": "pixel_values", "datatype": "FP32", "shape": [-1, 3, TILE, TILE]},
        {"name": "num_patches", "datatype": "INT64", "shape": [-1]}]
    names = ["rgba_640x480.png", "px_1x1.png", "coffee_1000x667.png"]
    datas = [images.get(n).data for n in names]
    payload = b"".join(struct.pack("<I", len(d)) + d for d in datas)
    head = json.dumps({
        "inputs": [{"name": "images", "datatype": "BYTES", "shape": [len(datas)],
                    "parameters": {"binary_data_size": len(payload)}}],
        "outputs": [{"name": "pixel_values", "parameters": {"binary_data": True}},
                    {"name": "num_patches", "parameters": {"binary_data": True}}],
        "parameters": {"reference": "transformers5-pil"}}).encode()
    r = daemon.request("POST", f"/v2/models/{PROFILE}/infer", data=head + payload,
                       headers={"Inference-Header-Content-Length": str(len(head)),
                                "Content-Type": "application/octet-stream"})
    assert r.status_code == 200, describe_error(r)
    n = int(r.headers["Inference-Header-Content-Length"])
    meta, at, got = json.loads(r.content[:n]), n, {}
    for o in meta["outputs"]:
        size = o["parameters"]["binary_data_size"]
        dt = {"FP32": np.float32, "INT64": np.int64}[o["datatype"]]
        got[o["name"]] = np.frombuffer(r.content[at:at + size], dtype=dt).reshape(o["shape"])
        at += size
    assert at == len(r.content)
    want = library(processors["transformers5-pil"], datas)
    assert not compare(got, want, names, "v2")


# --------------------------------------------------------------------------------------------
# Profile import
# --------------------------------------------------------------------------------------------

def _import(request, tmp_path, config: dict, name: str = "cfg"):
    binary = request.config.getoption("--daemon-bin")
    f = tmp_path / f"{name}.json"
    f.write_text(json.dumps(config))
    return subprocess.run([binary, "profile", "import", str(f)], capture_output=True, text=True,
                          timeout=30)


def test_import_of_the_published_config_is_the_preset(request, tmp_path):
    r = _import(request, tmp_path, HF_INTERNVL3)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    preset = json.loads((PROFILES_DIR / f"{PROFILE}.json").read_text())
    vlm = dict(preset["vlm"])
    vlm.pop("image_seq_length")  # the processor's (processor_config.json), not this file's
    assert got["vlm"] == vlm
    for k in ("resample", "rescale_factor", "mean", "std", "exif"):
        assert got[k] == preset[k], k
    assert got["references"] == list(REFERENCES) and got["default_reference"] == "transformers5"


def test_import_follows_crop_to_patches_and_the_class_defaults(request, tmp_path):
    # the image processor alone (GOT-OCR2): no tiling -> one tile per image
    got = _import(request, tmp_path, {"image_processor_type": "GotOcr2ImageProcessor",
                                      "crop_to_patches": False})
    assert got.returncode == 0, got.stderr
    p = json.loads(got.stdout)
    assert p["vlm"] == {"processor": "got_ocr2", "tile_size": 384, "min_patches": 1,
                        "max_patches": 1, "thumbnail": True}
    assert p["mean"] == [0.48145466, 0.4578275, 0.40821073] and p["resample"] == "bicubic"
    got = _import(request, tmp_path, {"image_processor_type": "GotOcr2ImageProcessorPil",
                                      "crop_to_patches": True, "min_patches": 2,
                                      "max_patches": 6, "size": 448})
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["vlm"] == {"processor": "got_ocr2", "tile_size": 448,
                                             "min_patches": 2, "max_patches": 6,
                                             "thumbnail": True}


@pytest.mark.parametrize("change, key", [
    ({"size": {"height": 448, "width": 224}}, '"size"'),
    ({"resample": 1}, '"resample"'),
    ({"use_thumbnail": False}, '"use_thumbnail"'),
    ({"max_patches": 64}, '"max_patches"'),
    ({"do_normalize": False}, '"do_normalize"'),
])
def test_import_refuses_what_it_cannot_reproduce_by_key(request, tmp_path, change, key):
    r = _import(request, tmp_path, dict(HF_INTERNVL3, **change))
    assert r.returncode != 0 and r.stdout == ""
    assert key in r.stderr, r.stderr


@pytest.mark.parametrize("change, message", [
    ({"max_patches": 64}, 'key "max_patches": expected an integer from 1 to 63'),
    ({"tile_size": None}, 'key "tile_size" is required'),
    ({"use_thumbnail": True}, 'unknown key "vlm.use_thumbnail"'),
    ({"thumbnail": 1}, 'key "thumbnail": expected true or false'),
])
def test_profile_file_errors_name_the_key(run_cli, tmp_path, change, message):
    prof = json.loads((PROFILES_DIR / f"{PROFILE}.json").read_text())
    prof["vlm"].update(change)
    prof["vlm"] = {k: v for k, v in prof["vlm"].items() if v is not None}
    d = tmp_path / "profiles"
    d.mkdir()
    (d / f"{PROFILE}.json").write_text(json.dumps(prof))
    r = run_cli(["--port", "0", "--backend", "cpu"], config=base_config(profiles_dir=str(d)),
                timeout=30)
    assert r.returncode != 0 and message in r.stderr, r.stderr
