"""SigLIP 2 NaFlex (vlm processor "siglip2_naflex") against transformers 5.23's
Siglip2ImageProcessor (torchvision, reference=transformers5) and Siglip2ImageProcessorPil
(reference=transformers5-pil), each built from the model's published preprocessor_config.json
(written below, no download). Every array the processor returns with return_tensors="np" is
compared: names, shapes, dtypes; pixel_values float32 max |diff| <= 1e-6 (padding rows
included), pixel_attention_mask and spatial_shapes equal; float16 equal to the reference's
astype(float16). Non-RGB images: see reference_arrays (do_convert_rgb).

One daemon (module scope) with a profiles_dir holding the shipped preset, the published config
as a model folder (imported), the same config with max_num_patches 64 and bicubic as NAME.json
(imported) and a native profile with max_num_patches 1024. Inputs: photos, a 4000x3000 photo,
1x1, 2x3, extreme aspect ratios (4000x10, 10x4000, 3000x20, 1x300), exact 256x256 (the resize
is an identity), gray, RGBA, LA, palette with tRNS, 16-bit, CMYK, RGB with a tRNS key;
batches mix all sizes. Also: /v1/plan, format=json, profile import and refusals."""
from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import warnings

import numpy as np
import pytest
from PIL import Image
from transformers import Siglip2ImageProcessor, Siglip2ImageProcessorPil

import images
from conftest import PROFILES_DIR, _start, base_config, describe_error, multipart_body

PRESET = "siglip2-naflex"
# google/siglip2-base-patch16-naflex (and -so400m-patch16-naflex): preprocessor_config.json
HF_NAFLEX = {
    "do_convert_rgb": None,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_processor_type": "Siglip2ImageProcessor",
    "image_std": [0.5, 0.5, 0.5],
    "max_num_patches": 256,
    "patch_size": 16,
    "processor_class": "Siglip2Processor",
    "resample": 2,
    "rescale_factor": 0.00392156862745098,
}
HF_NAFLEX_64 = dict(HF_NAFLEX, max_num_patches=64, resample=3)  # and bicubic
# a native profile: the preset at 1024 patches (what Siglip2Processor users pass for large
# inputs)
NATIVE_1024 = dict(json.loads((PROFILES_DIR / f"{PRESET}.json").read_text()),
                   name="naflex-1024",
                   vlm={"processor": "siglip2_naflex", "patch_size": 16,
                        "max_num_patches": 1024})

PROFILES = {  # profile name -> the processor config it must reproduce
    PRESET: HF_NAFLEX,
    "siglip2-base-patch16-naflex": HF_NAFLEX,  # model folder, imported
    "naflex-64": HF_NAFLEX_64,                 # NAME.json, imported
    "naflex-1024": dict(HF_NAFLEX, max_num_patches=1024),
}
REFERENCES = {"transformers5": Siglip2ImageProcessor,
              "transformers5-pil": Siglip2ImageProcessorPil}
ARRAYS = {"pixel_values": np.float32, "pixel_attention_mask": np.int32,
          "spatial_shapes": np.int64}
BATCH = 8


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _strip(w: int, h: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    base = np.asarray(images.photo("chelsea.png").convert("RGB").resize((w, h)), np.int16)
    noise = rng.integers(-20, 21, base.shape)
    return _png(Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB"))


CORPUS = ["astronaut_640x480_q90_420.jpg", "coffee_1000x667.png", "rocket_333x500.png",
          "chelsea_1920x1080.webp", "hubble_4000x3000_q90_420.jpg", "px_1x1.png",
          "odd_17x9.png", "thin_3x1000.png", "thin_1000x3.png", "thin_1x300.png",
          "strip_3000x20.png", "strip_20x3000.png", "up_100x100.png", "checker_333x251.png",
          "noise_640x480.png", "gray_500x333.png", "gray_640x480.jpg", "rgba_640x480.png",
          "la_500x333.png", "palette_trns_640x480.png", "gray16_640x480.png",
          "cmyk_640x480.jpg", "rgb_trns_500x333.png"]


def _inputs() -> list[tuple[str, bytes]]:
    items = [(n, images.get(n).data) for n in CORPUS]
    items += [
        ("wide_4000x10.png", _strip(4000, 10, 1)),
        ("tall_10x4000.png", _strip(10, 4000, 2)),
        ("tiny_2x3.png", _png(Image.fromarray(
            np.arange(18, dtype=np.uint8).reshape(3, 2, 3) * 14, "RGB"))),
        ("exact_256x256.png", _png(images.photo("coffee.png").convert("RGB").resize((256, 256)))),
        ("exact_512x512.png", _png(images.photo("rocket.jpg").convert("RGB").resize((512, 512)))),
    ]
    return items


INPUTS = _inputs()
# a smaller set for 1024 patches and float16
SMALL = ["astronaut_640x480_q90_420.jpg", "px_1x1.png", "tiny_2x3.png", "wide_4000x10.png",
         "tall_10x4000.png", "exact_512x512.png", "rgba_640x480.png", "gray_500x333.png"]


def _pil(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


# --------------------------------------------------------------------------------------------
# The library and the daemon
# --------------------------------------------------------------------------------------------

_PROCS: dict = {}


def processor(reference: str, cfg: dict):
    key = (reference, json.dumps(cfg, sort_keys=True))
    if key not in _PROCS:
        _PROCS[key] = REFERENCES[reference].from_dict(dict(cfg))
    return _PROCS[key]


def is_plain_rgb(data: bytes) -> bool:
    im = _pil(data)
    return im.mode == "RGB" and "transparency" not in im.info


def reference_arrays(reference: str, cfg: dict, items) -> dict:
    """The library's arrays for a batch. The published config leaves do_convert_rgb unset:
    Siglip2's processors then raise on every image that is not plain RGB (gray, palette,
    RGBA, LA, CMYK, 16-bit: a channel-count error) and ignore an RGB PNG's tRNS colour key.
    The daemon answers those images as the processor does with do_convert_rgb=True
    (transformers 5's convert_to_rgb: transparency onto white), so that is their reference;
    plain RGB images are compared with the config as published."""
    outs = []
    for _, d in items:
        c = cfg if is_plain_rgb(d) else dict(cfg, do_convert_rgb=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow: palette transparency as bytes
            outs.append(processor(reference, c)([_pil(d)], return_tensors="np"))
    return {k: np.concatenate([np.asarray(o[k]) for o in outs]) for k in outs[0].keys()}


def daemon_arrays(d, profile: str, reference: str, items, dtype="float32") -> dict:
    r = d.post_batch(items, profile=profile, dtype=dtype, format="npz",
                     params={"reference": reference})
    assert r.status_code == 200, f"{profile}/{reference}: {describe_error(r)}"
    with np.load(io.BytesIO(r.content), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def assert_same_arrays(got: dict, want: dict, items, what: str, f16: bool = False):
    assert set(got) == set(want) == set(ARRAYS), (what, sorted(got), sorted(want))
    for name, dt in ARRAYS.items():
        g, w = got[name], want[name]
        assert w.dtype == dt, (what, name, w.dtype)  # the library's own dtypes
        assert g.shape == w.shape, (what, name, g.shape, w.shape)
        if name != "pixel_values":
            assert g.dtype == dt, (what, name, g.dtype)
            assert np.array_equal(g, w), (what, name, g.tolist(), w.tolist())
    g, w = got["pixel_values"], want["pixel_values"]
    bad = []
    for i, (n, _) in enumerate(items):
        if f16:
            assert g.dtype == np.float16, (what, g.dtype)
            ok = np.array_equal(g[i].view(np.uint16), w[i].astype(np.float16).view(np.uint16))
            if not ok:
                bad.append(n)
        else:
            assert g.dtype == np.float32, (what, g.dtype)
            diff = float(np.abs(g[i] - w[i]).max())
            if diff > 1e-6:
                bad.append(f"{n}: max|diff| {diff:.4g} "
                           f"(shape {want['spatial_shapes'][i].tolist()})")
    assert not bad, f"{what}: {len(bad)} of {len(items)} differ\n" + "\n".join(bad)


@pytest.fixture(scope="module")
def naflex(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("naflex")
    d = root / "profiles"
    d.mkdir()
    shutil.copy(PROFILES_DIR / f"{PRESET}.json", d / f"{PRESET}.json")
    shutil.copy(PROFILES_DIR / "clip-224.json", d / "clip-224.json")  # base_config's default
    (d / "siglip2-base-patch16-naflex").mkdir()
    (d / "siglip2-base-patch16-naflex" / "preprocessor_config.json").write_text(
        json.dumps(HF_NAFLEX, indent=2))
    (d / "naflex-64.json").write_text(json.dumps(HF_NAFLEX_64, indent=2))
    (d / "naflex-1024.json").write_text(json.dumps(NATIVE_1024, indent=2))
    daemon = _start(request, root / "daemon", base_config(profiles_dir=str(d)))
    yield daemon
    assert daemon.stop() == 0, daemon.stderr_tail()


# --------------------------------------------------------------------------------------------
# Bit-exact arrays
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reference", sorted(REFERENCES))
@pytest.mark.parametrize("profile", [PRESET, "naflex-64"])
def test_arrays_bit_exact(naflex, profile, reference):
    cfg = PROFILES[profile]
    for i in range(0, len(INPUTS), BATCH):
        chunk = INPUTS[i:i + BATCH]
        assert_same_arrays(daemon_arrays(naflex, profile, reference, chunk),
                           reference_arrays(reference, cfg, chunk), chunk,
                           f"{profile}/{reference} batch {i // BATCH}")


@pytest.mark.parametrize("reference", sorted(REFERENCES))
def test_1024_patches(naflex, reference):
    chunk = [it for it in INPUTS if it[0] in SMALL]
    want = reference_arrays(reference, PROFILES["naflex-1024"], chunk)
    assert want["pixel_values"].shape == (len(chunk), 1024, 768)
    assert_same_arrays(daemon_arrays(naflex, "naflex-1024", reference, chunk), want, chunk,
                       f"naflex-1024/{reference}")


@pytest.mark.parametrize("reference", sorted(REFERENCES))
def test_float16_is_the_reference_astype(naflex, reference):
    chunk = [it for it in INPUTS if it[0] in SMALL]
    assert_same_arrays(daemon_arrays(naflex, PRESET, reference, chunk, dtype="float16"),
                       reference_arrays(reference, HF_NAFLEX, chunk), chunk,
                       f"{PRESET}/{reference} float16", f16=True)


def test_json_format_carries_the_same_arrays(naflex):
    chunk = [it for it in INPUTS if it[0] in ("px_1x1.png", "tiny_2x3.png")]
    want = reference_arrays("transformers5", HF_NAFLEX_64, chunk)
    r = naflex.post_batch(chunk, profile="naflex-64", format="json",
                          params={"reference": "transformers5"})
    assert r.status_code == 200, describe_error(r)
    got = {a["name"]: a for a in r.json()["arrays"]}
    assert list(got) == list(want)
    for name, w in want.items():
        assert got[name]["shape"] == list(w.shape) and got[name]["dtype"] == str(w.dtype), name
        g = np.array(got[name]["data"], dtype=np.float64).astype(w.dtype).reshape(w.shape)
        assert float(np.abs(g.astype(np.float64) - w).max()) <= 1e-6, name


def test_kserve_v2_one_output_per_array(naflex):
    chunk = [it for it in INPUTS if it[0] in ("px_1x1.png", "wide_4000x10.png", "tiny_2x3.png")]
    want = reference_arrays("transformers5-pil", HF_NAFLEX_64, chunk)
    payload = b"".join(struct.pack("<I", len(d)) + d for _, d in chunk)
    head = json.dumps({"inputs": [{"name": "images", "datatype": "BYTES", "shape": [len(chunk)],
                                   "parameters": {"binary_data_size": len(payload)}}],
                       "parameters": {"reference": "transformers5-pil"}}).encode()
    r = naflex.request("POST", "/v2/models/naflex-64/infer", data=head + payload,
                       headers={"Inference-Header-Content-Length": str(len(head)),
                                "Content-Type": "application/octet-stream"})
    assert r.status_code == 200, describe_error(r)
    n = int(r.headers.get("Inference-Header-Content-Length", len(r.content)))
    outs = json.loads(r.content[:n])["outputs"]
    assert [o["name"] for o in outs] == list(want)
    at = n
    for o in outs:
        w = want[o["name"]]
        assert o["shape"] == list(w.shape), o["name"]
        assert o["datatype"] == {"float32": "FP32", "int32": "INT32", "int64": "INT64"}[
            str(w.dtype)], o["name"]
        if "binary_data_size" in o.get("parameters", {}):
            size = o["parameters"]["binary_data_size"]
            g = np.frombuffer(r.content[at:at + size], dtype=w.dtype).reshape(w.shape)
            at += size
        else:
            g = np.array(o["data"], dtype=np.float64).astype(w.dtype).reshape(w.shape)
        assert float(np.abs(g.astype(np.float64) - w).max()) <= 1e-6, o["name"]


def test_imported_model_folder_equals_the_preset(naflex):
    chunk = INPUTS[:4]
    got = daemon_arrays(naflex, "siglip2-base-patch16-naflex", "transformers5", chunk)
    want = daemon_arrays(naflex, PRESET, "transformers5", chunk)
    for k in ARRAYS:
        assert np.array_equal(got[k], want[k]), k


def test_geometry_of_edge_cases_is_the_librarys(naflex):
    """Known shapes (from the library) that exercise the search's limits: the scale cap of 100
    (1x1 -> 7x7 patches, not 16x16), one-patch sides of extreme strips, the identity."""
    want = reference_arrays("transformers5", HF_NAFLEX, [it for it in INPUTS if it[0] in (
        "px_1x1.png", "wide_4000x10.png", "tall_10x4000.png", "exact_256x256.png")])
    assert want["spatial_shapes"].tolist() == [[7, 7], [1, 256], [256, 1], [16, 16]]


@pytest.mark.parametrize("profile", [PRESET, "naflex-1024"])
def test_plan_is_the_librarys_geometry(naflex, profile):
    """POST /v1/plan (no pixels) gives the shapes the library produced."""
    want = reference_arrays("transformers5-pil", PROFILES[profile], INPUTS)
    body, ct = multipart_body(INPUTS)
    r = naflex.session.post(naflex.url + "/v1/plan", params={"profile": profile}, data=body,
                            headers={"Content-Type": ct}, timeout=60)
    assert r.status_code == 200, describe_error(r)
    plan = r.json()
    assert plan["profile"] == profile and plan["reference"] == "transformers5"
    arrays = {a["name"]: a for a in plan["arrays"]}
    assert [a["name"] for a in plan["arrays"]] == list(want)  # the library's order
    for name, w in want.items():
        assert arrays[name]["shape"] == list(w.shape), name
        assert arrays[name]["dtype"] == str(w.dtype), name
    p = PROFILES[profile]["patch_size"]
    assert len(plan["images"]) == len(INPUTS)
    for i, (img, (n, _)) in enumerate(zip(plan["images"], INPUTS)):
        nh, nw = want["spatial_shapes"][i].tolist()
        real = int(want["pixel_attention_mask"][i].sum())
        assert img["index"] == i, n
        assert img["spatial_shapes"] == [nh, nw], n
        assert img["num_patches"] == img["vision_tokens"] == real == nh * nw, n
        assert img["tiles"] == [{"resized": [nh * p, nw * p], "window": [0, 0, nh * p, nw * p]}], n


# --------------------------------------------------------------------------------------------
# Profiles: listing, import, refusals
# --------------------------------------------------------------------------------------------

def _settings(p: dict) -> dict:
    return {k: p[k] for k in ("vlm", "resample", "rescale_factor", "mean", "std",
                              "default_reference", "references")}


def test_profiles_listing(naflex):
    r = naflex.get("/v1/profiles")
    assert r.status_code == 200, describe_error(r)
    listed = {p["name"]: p for p in r.json()["profiles"]}
    preset = listed[PRESET]
    assert preset["vlm"] == {"processor": "siglip2_naflex", "patch_size": 16,
                             "max_num_patches": 256}
    assert preset["default_reference"] == "transformers5"
    assert sorted(preset["references"]) == ["transformers5", "transformers5-pil"]
    assert "google/siglip2-base-patch16-naflex" in preset["models"]
    assert _settings(listed["siglip2-base-patch16-naflex"]) == _settings(preset)
    assert listed["naflex-64"]["vlm"]["max_num_patches"] == 64
    assert listed["naflex-1024"]["vlm"]["max_num_patches"] == 1024


def _import(request, path) -> subprocess.CompletedProcess:
    binary = request.config.getoption("--daemon-bin")
    return subprocess.run([binary, "profile", "import", str(path)], capture_output=True,
                          text=True, timeout=30)


def test_cli_import_of_the_published_config_gives_the_preset(request, tmp_path):
    folder = tmp_path / "siglip2-so400m-patch16-naflex"
    folder.mkdir()
    (folder / "preprocessor_config.json").write_text(json.dumps(HF_NAFLEX))
    r = _import(request, folder)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    preset = json.loads((PROFILES_DIR / f"{PRESET}.json").read_text())
    assert got["name"] == "siglip2-so400m-patch16-naflex"
    for k in ("vlm", "resample", "rescale_factor", "mean", "std"):
        assert got[k] == preset[k], k
    assert got["default_reference"] == "transformers5"
    # a saved fast-processor config (transformers 4.57 save_pretrained) imports the same
    saved = dict(HF_NAFLEX, image_processor_type="Siglip2ImageProcessorFast",
                 data_format="channels_first", default_to_square=True, device=None,
                 disable_grouping=None, do_pad=None, input_data_format=None, pad_size=None,
                 return_tensors=None)
    (folder / "preprocessor_config.json").write_text(json.dumps(saved))
    r = _import(request, folder)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["vlm"] == preset["vlm"]


@pytest.mark.parametrize("change, key", [
    ({"do_resize": False}, '"do_resize"'),
    ({"resample": 0}, '"resample"'),
    ({"do_normalize": False}, '"do_normalize"'),
    ({"do_rescale": False}, '"do_rescale"'),
    ({"max_num_patches": 0}, '"max_num_patches"'),
    ({"patch_size": 16.5}, '"patch_size"'),
    ({"do_center_crop": True}, '"do_center_crop"'),
    ({"size_divisor": 2}, '"size_divisor"'),
])
def test_cli_import_refuses_by_key(request, tmp_path, change, key):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(HF_NAFLEX, **change)))
    r = _import(request, bad)
    assert r.returncode != 0 and r.stdout == "", r.stdout
    assert "bad.json" in r.stderr and key in r.stderr, r.stderr


@pytest.mark.parametrize("vlm, key", [
    ({"processor": "siglip2_naflex", "patch_size": 16}, '"max_num_patches"'),
    ({"processor": "siglip2_naflex", "max_num_patches": 256}, '"patch_size"'),
    ({"processor": "siglip2_naflex", "patch_size": 16, "max_num_patches": 256, "merge": 2},
     '"vlm.merge"'),
    ({"processor": "siglip2_naflex", "patch_size": 512, "max_num_patches": 65536},
     "max_num_patches"),
])
def test_native_profile_refuses_by_key(request, tmp_path, vlm, key):
    p = dict(json.loads((PROFILES_DIR / f"{PRESET}.json").read_text()), name="bad", vlm=vlm)
    (tmp_path / "bad.json").write_text(json.dumps(p))
    r = _import(request, tmp_path / "bad.json")
    assert r.returncode != 0 and r.stdout == "", r.stdout
    assert key in r.stderr, r.stderr
