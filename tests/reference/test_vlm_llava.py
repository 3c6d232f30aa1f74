"""LLaVA-1.5 (vlm processor "llava") and LLaVA-NeXT ("llava_next") against transformers 5.23's
LlavaImageProcessor / LlavaNextImageProcessor (torchvision, reference=transformers5) and their
*Pil classes (reference=transformers5-pil), each built from a published-style
preprocessor_config.json written below (no download). Every array the processor returns with
return_tensors="np" is compared: names, shapes, dtypes; pixel_values float32 max |diff| <= 1e-6
(the batch's zero tiles included), image_sizes equal; float16 equal to the reference's
astype(float16).

One daemon (module scope) with a profiles_dir holding the two shipped presets, the published
LLaVA-NeXT config as a model folder (imported), a LlavaImageProcessor do_pad config (imported),
LLaVA variants whose crop is not the identity (imported: crop < size with and without do_pad)
and a native LLaVA-NeXT profile with square pinpoints (tiles wholly in the zero padding).
Inputs: photos, a 4000x3000 photo, 1x1, 2x3, extreme aspect ratios (4000x10, 10x4000, 1x2000,
thin strips), exact squares (the resize is an identity), gray, RGBA, LA, palette with tRNS,
16-bit, CMYK; batches mix all sizes (so LLaVA-NeXT batches pad tile counts)."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import types
import warnings

import numpy as np
import pytest
from PIL import Image
from transformers import (LlavaImageProcessor, LlavaImageProcessorPil, LlavaNextImageProcessor,
                          LlavaNextImageProcessorPil, LlavaNextProcessor, LlavaProcessor)

import images
from conftest import PROFILES_DIR, _start, base_config, describe_error, multipart_body

MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
# llava-hf/llava-v1.6-mistral-7b-hf: preprocessor_config.json
HF_NEXT = {
    "aspect_ratio_setting": "anyres",
    "crop_size": {"height": 336, "width": 336},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_grid_pinpoints": PINPOINTS,
    "image_mean": MEAN,
    "image_processor_type": "LlavaNextImageProcessor",
    "image_std": STD,
    "processor_class": "LlavaNextProcessor",
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 336},
}
# llava-hf/llava-1.5-7b-hf's sizes with LlavaImageProcessor and do_pad (the original LLaVA-1.5's
# image_aspect_ratio="pad"; a config naming CLIPImageProcessor does not pad)
HF_LLAVA = {
    "crop_size": {"height": 336, "width": 336},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_pad": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": MEAN,
    "image_processor_type": "LlavaImageProcessor",
    "image_std": STD,
    "processor_class": "LlavaProcessor",
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 336},
}
# a crop that is a real window: smaller than the resize, with and without the pad
HF_LLAVA_CROP = dict(HF_LLAVA, crop_size={"height": 300, "width": 300}, resample=2)
HF_LLAVA_NOPAD = dict(HF_LLAVA, do_pad=False, size={"shortest_edge": 224},
                      crop_size={"height": 200, "width": 200})
# a crop larger than the resize: zero rows and columns around it (odd: 25 extra)
HF_LLAVA_BIGCROP = dict(HF_LLAVA, size={"shortest_edge": 311}, crop_size=336)
SQUARE_PINPOINTS = [[1008, 1008], [672, 672]]
NATIVE_SQUARE = dict(json.loads((PROFILES_DIR / "llava-next.json").read_text()),
                     name="next-square",
                     vlm={"processor": "llava_next", "tile_size": 336,
                          "pinpoints": SQUARE_PINPOINTS, "vision_patch_size": 14})

LLAVA, NEXT = "llava-1.5", "llava-next"
PROFILES = {  # profile name -> (family, the processor config it must reproduce)
    LLAVA: ("llava", HF_LLAVA),
    NEXT: ("llava_next", HF_NEXT),
    "llava-v1.6-mistral-7b-hf": ("llava_next", HF_NEXT),  # model folder, imported
    "llava-pad": ("llava", HF_LLAVA),                     # NAME.json, imported
    "llava-crop": ("llava", HF_LLAVA_CROP),
    "llava-nopad": ("llava", HF_LLAVA_NOPAD),
    "llava-bigcrop": ("llava", HF_LLAVA_BIGCROP),
    "next-square": ("llava_next", dict(HF_NEXT, image_grid_pinpoints=SQUARE_PINPOINTS)),
}
CLASSES = {
    "llava": {"transformers5": LlavaImageProcessor, "transformers5-pil": LlavaImageProcessorPil},
    "llava_next": {"transformers5": LlavaNextImageProcessor,
                   "transformers5-pil": LlavaNextImageProcessorPil},
}
ARRAYS = {"llava": {"pixel_values": np.float32},
          "llava_next": {"pixel_values": np.float32, "image_sizes": np.int64}}
REFERENCES = ["transformers5", "transformers5-pil"]
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
          "gray_500x333.png", "gray_640x480.jpg", "rgba_640x480.png", "la_500x333.png",
          "palette_trns_640x480.png", "gray16_640x480.png", "cmyk_640x480.jpg",
          "rgb_trns_500x333.png"]


def _inputs() -> list[tuple[str, bytes]]:
    items = [(n, images.get(n).data) for n in CORPUS]
    items += [
        ("wide_4000x10.png", _strip(4000, 10, 1)),
        ("tall_10x4000.png", _strip(10, 4000, 2)),
        ("line_1x2000.png", _strip(1, 2000, 3)),
        ("line_2000x1.png", _strip(2000, 1, 4)),
        ("tiny_2x3.png", _png(Image.fromarray(
            np.arange(18, dtype=np.uint8).reshape(3, 2, 3) * 14, "RGB"))),
        ("exact_336x336.png", _png(images.photo("coffee.png").convert("RGB").resize((336, 336)))),
        ("exact_672x336.png", _png(images.photo("rocket.jpg").convert("RGB").resize((672, 336)))),
        ("exact_336x1008.png", _png(images.photo("coffee.png").convert("RGB").resize((336, 1008)))),
    ]
    return items


INPUTS = _inputs()
SMALL = ["astronaut_640x480_q90_420.jpg", "px_1x1.png", "tiny_2x3.png", "wide_4000x10.png",
         "tall_10x4000.png", "exact_336x336.png", "rgba_640x480.png", "gray_500x333.png"]


def _pick(names):
    return [it for it in INPUTS if it[0] in names]


def _pil(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


# --------------------------------------------------------------------------------------------
# The library and the daemon
# --------------------------------------------------------------------------------------------

_PROCS: dict = {}


def processor(family: str, reference: str, cfg: dict):
    key = (family, reference, json.dumps(cfg, sort_keys=True))
    if key not in _PROCS:
        _PROCS[key] = CLASSES[family][reference].from_dict(dict(cfg))
    return _PROCS[key]


def reference_arrays(profile: str, reference: str, items) -> dict:
    """One call of the processor on the whole batch (as a client would make it)."""
    family, cfg = PROFILES[profile]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow: palette transparency as bytes
        out = processor(family, reference, cfg)([_pil(d) for _, d in items],
                                                return_tensors="np")
    return {k: np.asarray(v) for k, v in out.items()}


def daemon_arrays(d, profile: str, reference: str, items, dtype="float32") -> dict:
    r = d.post_batch(items, profile=profile, dtype=dtype, format="npz",
                     params={"reference": reference})
    assert r.status_code == 200, f"{profile}/{reference}: {describe_error(r)}"
    with np.load(io.BytesIO(r.content), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def assert_same_arrays(family: str, got: dict, want: dict, items, what: str, f16=False):
    arrays = ARRAYS[family]
    assert set(got) == set(want) == set(arrays), (what, sorted(got), sorted(want))
    for name, dt in arrays.items():
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
            if not np.array_equal(g[i].view(np.uint16), w[i].astype(np.float16).view(np.uint16)):
                bad.append(n)
        else:
            assert g.dtype == np.float32, (what, g.dtype)
            diff = np.abs(g[i] - w[i])
            if float(diff.max()) > 1e-6:
                where = np.unravel_index(int(diff.argmax()), diff.shape)
                bad.append(f"{n}: max|diff| {float(diff.max()):.4g} at {tuple(map(int, where))}")
    assert not bad, f"{what}: {len(bad)} of {len(items)} differ\n" + "\n".join(bad)


@pytest.fixture(scope="module")
def llava(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("llava")
    d = root / "profiles"
    d.mkdir()
    for name in (LLAVA, NEXT, "clip-224"):  # (clip-224: base_config's default profile)
        shutil.copy(PROFILES_DIR / f"{name}.json", d / f"{name}.json")
    (d / "llava-v1.6-mistral-7b-hf").mkdir()
    (d / "llava-v1.6-mistral-7b-hf" / "preprocessor_config.json").write_text(
        json.dumps(HF_NEXT, indent=2))
    (d / "llava-pad.json").write_text(json.dumps(HF_LLAVA, indent=2))
    (d / "llava-crop.json").write_text(json.dumps(HF_LLAVA_CROP, indent=2))
    (d / "llava-nopad.json").write_text(json.dumps(HF_LLAVA_NOPAD, indent=2))
    (d / "llava-bigcrop.json").write_text(json.dumps(HF_LLAVA_BIGCROP, indent=2))
    (d / "next-square.json").write_text(json.dumps(NATIVE_SQUARE, indent=2))
    daemon = _start(request, root / "daemon", base_config(profiles_dir=str(d)))
    yield daemon
    assert daemon.stop() == 0, daemon.stderr_tail()


# --------------------------------------------------------------------------------------------
# Bit-exact arrays
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("profile", [LLAVA, NEXT])
def test_arrays_bit_exact(llava, profile, reference):
    family = PROFILES[profile][0]
    for i in range(0, len(INPUTS), BATCH):
        chunk = INPUTS[i:i + BATCH]
        assert_same_arrays(family, daemon_arrays(llava, profile, reference, chunk),
                           reference_arrays(profile, reference, chunk), chunk,
                           f"{profile}/{reference} batch {i // BATCH}")


@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("profile", ["llava-crop", "llava-nopad", "llava-bigcrop",
                                     "next-square"])
def test_variants_bit_exact(llava, profile, reference):
    """Crops that are real windows, bilinear, no pad; a crop larger than the resize (zero
    padding, split as each backend splits an odd margin); square pinpoints whose grids leave
    whole tiles in the zero padding."""
    chunk = _pick(SMALL + ["strip_3000x20.png", "line_2000x1.png", "rocket_333x500.png"])
    assert_same_arrays(PROFILES[profile][0], daemon_arrays(llava, profile, reference, chunk),
                       reference_arrays(profile, reference, chunk), chunk,
                       f"{profile}/{reference}")


@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("profile", [LLAVA, NEXT])
def test_float16_is_the_reference_astype(llava, profile, reference):
    chunk = _pick(SMALL)
    assert_same_arrays(PROFILES[profile][0],
                       daemon_arrays(llava, profile, reference, chunk, dtype="float16"),
                       reference_arrays(profile, reference, chunk), chunk,
                       f"{profile}/{reference} float16", f16=True)


def test_single_images_and_zero_tiles(llava):
    """A batch of one has no padding tiles; in a mixed batch an image's missing tiles are 0.0,
    as the processor's _pad_for_batching leaves them (5 tiles for 640x480, 4 for 4000x10)."""
    one = _pick(["wide_4000x10.png"])
    got = daemon_arrays(llava, NEXT, "transformers5", one)
    assert got["pixel_values"].shape == (1, 4, 3, 336, 336)
    two = _pick(["astronaut_640x480_q90_420.jpg", "wide_4000x10.png"])
    got2 = daemon_arrays(llava, NEXT, "transformers5", two)
    assert got2["pixel_values"].shape == (2, 5, 3, 336, 336)
    assert np.array_equal(got2["pixel_values"][1, :4], got["pixel_values"][0])
    assert not got2["pixel_values"][1, 4].any()


def test_imported_equals_the_presets(llava):
    chunk = INPUTS[:4]
    for imported, preset in (("llava-v1.6-mistral-7b-hf", NEXT), ("llava-pad", LLAVA)):
        got = daemon_arrays(llava, imported, "transformers5", chunk)
        want = daemon_arrays(llava, preset, "transformers5", chunk)
        assert set(got) == set(want)
        for k in got:
            assert np.array_equal(got[k], want[k]), (imported, k)


# --------------------------------------------------------------------------------------------
# /v1/plan: shapes and vision tokens of the library
# --------------------------------------------------------------------------------------------

def _plan(d, profile, items, reference="transformers5"):
    body, ct = multipart_body(items)
    r = d.session.post(d.url + "/v1/plan", params={"profile": profile, "reference": reference},
                       data=body, headers={"Content-Type": ct}, timeout=60)
    assert r.status_code == 200, describe_error(r)
    return r.json()


def _token_counter(family: str, cfg: dict):
    """The processors' own placeholder count (replace_image_token) with the llava-hf processor
    settings: patch_size 14, num_additional_image_tokens 1, strategy "default"."""
    cls = LlavaProcessor if family == "llava" else LlavaNextProcessor
    fake = types.SimpleNamespace(
        patch_size=14, num_additional_image_tokens=1, vision_feature_select_strategy="default",
        image_token="<image>",
        image_processor=types.SimpleNamespace(image_grid_pinpoints=cfg.get("image_grid_pinpoints")))
    if family == "llava_next":
        fake._get_number_of_features = lambda *a: cls._get_number_of_features(fake, *a)
        fake._get_unpadded_features = lambda *a: cls._get_unpadded_features(fake, *a)

    def count(want: dict, i: int) -> int:
        s = cls.replace_image_token(fake, want, i)
        return len(s) // len("<image>")
    return count


@pytest.mark.parametrize("profile", [LLAVA, NEXT, "next-square"])
def test_plan_is_the_librarys_geometry(llava, profile):
    family, cfg = PROFILES[profile]
    want = reference_arrays(profile, "transformers5-pil", INPUTS)
    plan = _plan(llava, profile, INPUTS)
    assert plan["profile"] == profile and plan["reference"] == "transformers5"
    arrays = {a["name"]: a for a in plan["arrays"]}
    assert [a["name"] for a in plan["arrays"]] == list(want)  # the library's order
    for name, w in want.items():
        assert arrays[name]["shape"] == list(w.shape), name
        assert arrays[name]["dtype"] == str(w.dtype), name
    count = _token_counter(family, cfg)
    assert len(plan["images"]) == len(INPUTS)
    for i, (img, (n, _)) in enumerate(zip(plan["images"], INPUTS)):
        assert img["index"] == i, n
        assert img["vision_tokens"] == count(want, i), n
        if family == "llava":
            assert img["vision_tokens"] == 576, n
            w, h = _pil(INPUTS[i][1]).size
            if w != h:
                m = max(w, h)
                assert img["pad"] == [m, m, (m - h) // 2, (m - w) // 2], n
        else:
            assert img["image_sizes"] == want["image_sizes"][i].tolist(), n
            real = int(want["pixel_values"][i].any(axis=(1, 2, 3)).sum())
            assert img["num_tiles"] == len(img["tiles"]) >= real, n


def test_vision_tokens_on_many_sizes(llava):
    """/v1/plan's LLaVA-NeXT token count against the processor's formula on 200 random sizes
    (PNG headers only: 1x1 images declaring the size are enough for a plan)."""
    rng = np.random.default_rng(7)
    sizes = [(int(w), int(h)) for w, h in rng.integers(1, 3000, (200, 2))]
    sizes += [(1, 1), (1, 5000), (5000, 1), (336, 672), (673, 336), (1009, 1008)]
    items = [(f"{w}x{h}.png", _png(Image.new("RGB", (w, h)))) for w, h in sizes]
    plan = _plan(llava, NEXT, items)
    count = _token_counter("llava_next", HF_NEXT)
    for (w, h), img in zip(sizes, plan["images"]):
        fake_inputs = {"image_sizes": [[h, w]], "pixel_values": [np.zeros((1, 3, 336, 336))]}
        assert img["vision_tokens"] == count(fake_inputs, 0), (w, h)
        assert img["image_sizes"] == [h, w]


# --------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------

def test_huge_pad_canvas_is_refused(llava):
    """LLaVA pads to max(w, h)^2 before resizing; clipprep bounds that canvas (2^27 pixels)."""
    items = [("wide_12000x4.png", _png(Image.new("RGB", (12000, 4))))]
    r = llava.post_batch(items, profile=LLAVA, format="npz")
    assert r.status_code == 413, describe_error(r)
    assert "12000x12000" in r.text
    # LLaVA-NeXT has no such canvas: the same image is answered
    r = llava.post_batch(items, profile=NEXT, format="npz")
    assert r.status_code == 200, describe_error(r)


# --------------------------------------------------------------------------------------------
# Profiles: listing, import, refusals
# --------------------------------------------------------------------------------------------

def _settings(p: dict) -> dict:
    v = {k: p[k] for k in ("vlm", "resample", "rescale_factor", "mean", "std",
                           "default_reference", "references", "fill")}
    v["vlm"] = {k: x for k, x in v["vlm"].items() if k != "vision_patch_size"}
    return v


def test_profiles_listing(llava):
    r = llava.get("/v1/profiles")
    assert r.status_code == 200, describe_error(r)
    listed = {p["name"]: p for p in r.json()["profiles"]}
    assert listed[LLAVA]["vlm"] == {"processor": "llava", "shortest_edge": 336, "tile_size": 336,
                                    "pad_to_square": True, "background": [122, 116, 104],
                                    "vision_patch_size": 14}
    assert listed[NEXT]["vlm"] == {"processor": "llava_next", "tile_size": 336,
                                   "pinpoints": PINPOINTS, "vision_patch_size": 14}
    for p in (LLAVA, NEXT):
        assert listed[p]["default_reference"] == "transformers5"
        assert sorted(listed[p]["references"]) == REFERENCES
    assert "llava-hf/llava-v1.6-mistral-7b-hf" in listed[NEXT]["models"]
    assert "llava-hf/llava-1.5-7b-hf" in listed[LLAVA]["models"]
    # the preprocessor configs import to the presets' settings (the vision tower's patch side
    # is not in preprocessor_config.json)
    assert _settings(listed["llava-v1.6-mistral-7b-hf"]) == _settings(listed[NEXT])
    assert _settings(listed["llava-pad"]) == _settings(listed[LLAVA])
    assert listed["llava-nopad"]["vlm"]["pad_to_square"] is False


def _import(request, path) -> subprocess.CompletedProcess:
    binary = request.config.getoption("--daemon-bin")
    return subprocess.run([binary, "profile", "import", str(path)], capture_output=True,
                          text=True, timeout=30)


@pytest.mark.parametrize("cfg, preset", [(HF_NEXT, NEXT), (HF_LLAVA, LLAVA)])
def test_cli_import_of_the_published_config_gives_the_preset(request, tmp_path, cfg, preset):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "preprocessor_config.json").write_text(json.dumps(cfg))
    r = _import(request, folder)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    want = json.loads((PROFILES_DIR / f"{preset}.json").read_text())
    want["vlm"].pop("vision_patch_size")
    assert got["name"] == "model"
    for k in ("vlm", "resample", "rescale_factor", "mean", "std"):
        assert got[k] == want[k], k
    assert got["default_reference"] == "transformers5"
    # the class defaults: LlavaNext's own pinpoints when the config names none
    if preset == NEXT:
        (folder / "preprocessor_config.json").write_text(json.dumps(
            {k: v for k, v in cfg.items() if k != "image_grid_pinpoints"}))
        r = _import(request, folder)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["vlm"]["pinpoints"] == PINPOINTS
        assert processor("llava_next", "transformers5", {"crop_size": 336, "size": 336}
                         ).image_grid_pinpoints == PINPOINTS


@pytest.mark.parametrize("base, change, key", [
    (HF_NEXT, {"size": {"shortest_edge": 224}}, '"size"'),
    (HF_NEXT, {"crop_size": {"height": 336, "width": 300}}, '"crop_size"'),
    (HF_NEXT, {"image_grid_pinpoints": [[336, 500]]}, '"image_grid_pinpoints"'),
    (HF_NEXT, {"do_pad": False}, '"do_pad"'),
    (HF_NEXT, {"aspect_ratio_setting": "pad"}, '"aspect_ratio_setting"'),
    (HF_NEXT, {"resample": 1}, '"resample"'),
    (HF_NEXT, {"size": {"height": 336, "width": 336}}, '"size"'),
    (HF_LLAVA, {"do_resize": False}, '"do_resize"'),
    (HF_LLAVA, {"do_normalize": False}, '"do_normalize"'),
    (HF_LLAVA, {"image_mean": [1.5, 0.5, 0.5]}, '"image_mean"'),
    (HF_LLAVA, {"do_center_crop": False, "do_pad": False}, '"do_center_crop"'),
    (HF_LLAVA, {"size_divisor": 2}, '"size_divisor"'),
])
def test_cli_import_refuses_by_key(request, tmp_path, base, change, key):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(base, **change)))
    r = _import(request, bad)
    assert r.returncode != 0 and r.stdout == "", r.stdout
    assert "bad.json" in r.stderr and key in r.stderr, r.stderr


@pytest.mark.parametrize("preset, vlm, key", [
    (NEXT, {"processor": "llava_next", "tile_size": 336}, '"vlm.pinpoints"'),
    (NEXT, {"processor": "llava_next", "tile_size": 336,
            "pinpoints": [[3360, 3360]]}, "tiles"),
    (NEXT, {"processor": "llava_next", "tile_size": 336, "pinpoints": PINPOINTS,
            "merge": 2}, '"vlm.merge"'),
    (LLAVA, {"processor": "llava", "shortest_edge": 336, "tile_size": 336},
     '"vlm.background"'),
    (LLAVA, {"processor": "llava", "tile_size": 336, "pad_to_square": False},
     '"shortest_edge"'),
])
def test_native_profile_refuses_by_key(request, tmp_path, preset, vlm, key):
    p = dict(json.loads((PROFILES_DIR / f"{preset}.json").read_text()), name="bad", vlm=vlm)
    (tmp_path / "bad.json").write_text(json.dumps(p))
    r = _import(request, tmp_path / "bad.json")
    assert r.returncode != 0 and r.stdout == "", r.stdout
    assert key in r.stderr, r.stderr
