"""Models' own config files and the shipped preset table, against the real libraries.

Two daemons:
  * `daemon` (the session one, profiles_dir = config/profiles): every shipped preset is compared
    with its library. open_clip presets list "open_clip MODEL/TAG" ids: the expectation is
    open_clip's own eval transform built from open_clip's pretrained config for that tag and
    the model config's image size (so a preset's values are checked against the library, not
    against a copy). Hugging Face presets are compared with transformers 5's Pillow processor
    (CLIPImageProcessorPil / SiglipImageProcessorPil) built from the checkpoint's
    preprocessor_config.json, written below as the model publishes it.
  * `imported` (a profiles_dir holding model configs as NAME.json and as model folders): the
    daemon's tensor for each config equals the library's, built from the same config without
    any download (transformers `from_dict`; open_clip `image_transform_v2` on the config's
    preprocess_cfg merged the way open_clip's factory merges it).

Inputs are RGB PNGs (photos and edge sizes): on RGB input transformers' Pillow path and
open_clip's transform are both Pillow's resize, which the daemon reproduces; non-RGB modes and the
torchvision backends are the reference work's (#12). Bit-exact: float32 max |diff| <= 1e-6.
"""
from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import images
from conftest import PROFILES_DIR, _start, base_config, describe_error, decode_tensor

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
RESCALE = 0.00392156862745098


# --------------------------------------------------------------------------------------------
# Inputs: RGB PNGs (lossless, so the daemon and Pillow decode the same pixels)
# --------------------------------------------------------------------------------------------

def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def _photo(name: str, w: int, h: int) -> Image.Image:
    return images.photo(name).convert("RGB").resize((w, h), Image.Resampling.LANCZOS)


def _inputs() -> dict[str, bytes]:
    rng = np.random.default_rng(14)
    noise = Image.fromarray(rng.integers(0, 256, (97, 131, 3), dtype=np.uint8), "RGB")
    return {
        "astronaut_640x480": _png(_photo("astronaut.png", 640, 480)),
        "coffee_333x517": _png(_photo("coffee.png", 333, 517)),  # portrait, odd sizes
        "chelsea_301x200": _png(_photo("chelsea.png", 301, 200)),  # odd padding in longest
        "noise_131x97": _png(noise),  # upscaled: every tap matters
        "strip_300x7": _png(_photo("astronaut.png", 300, 7)),  # extreme aspect ratio
        "pixel_1x1": _png(Image.new("RGB", (1, 1), (200, 30, 90))),
    }


INPUTS = _inputs()
PHOTOS = ["astronaut_640x480", "coffee_333x517", "strip_300x7"]  # for the 38 presets


def _pil(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    assert im.mode == "RGB"
    return im


# --------------------------------------------------------------------------------------------
# The libraries
# --------------------------------------------------------------------------------------------

def hf_tensor(config: dict, data: bytes) -> np.ndarray:
    """transformers 5, Pillow backend, the processor class the config names."""
    import transformers
    t = config.get("image_processor_type") or config.get("feature_extractor_type")
    family = t.replace("ImageProcessorFast", "").replace("ImageProcessorPil", "").replace(
        "ImageProcessor", "").replace("FeatureExtractor", "")
    cls = getattr(transformers, f"{family}ImageProcessorPil")
    proc = cls.from_dict(dict(config))
    return proc(_pil(data), return_tensors="np")["pixel_values"][0].astype(np.float32)


def open_clip_cfg_transform(config: dict):
    """open_clip's eval transform for an open_clip_config.json, merged as its factory does:
    PreprocessCfg defaults, then preprocess_cfg, then size = the vision tower's image size."""
    from open_clip.transform import PreprocessCfg, image_transform_v2, merge_preprocess_dict
    merged = merge_preprocess_dict(PreprocessCfg(), config.get("preprocess_cfg", {}))
    size = config.get("model_cfg", {}).get("vision_cfg", {}).get("image_size")
    if size is not None:
        merged["size"] = tuple(size) if isinstance(size, list) else size
    return image_transform_v2(PreprocessCfg(**merged), is_train=False)


def open_clip_pretrained_transform(model: str, tag: str):
    """open_clip's eval transform for a pretrained tag (pretrained.py + model_configs)."""
    import open_clip
    pc = open_clip.get_pretrained_cfg(model, tag)
    size = open_clip.get_model_config(model)["vision_cfg"].get("image_size", 224)
    return open_clip.image_transform(
        size, is_train=False, mean=pc.get("mean"), std=pc.get("std"),
        resize_mode=pc.get("resize_mode"), interpolation=pc.get("interpolation"),
        fill_color=pc.get("fill_color", 0))


def run_transform(transform, data: bytes) -> np.ndarray:
    return transform(_pil(data)).numpy().astype(np.float32)


def assert_same(got: np.ndarray, want: np.ndarray, what: str):
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    d = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max())
    assert d <= 1e-6, f"{what}: max |diff| {d} ({int((got != want).sum())} values differ)"


def daemon_tensor(d, profile: str, data: bytes, reference: str | None) -> np.ndarray:
    r = d.post(data, profile=profile, params={"reference": reference} if reference else None)
    assert r.status_code == 200, f"{profile}: {describe_error(r)}"
    return decode_tensor(r)[0]


# --------------------------------------------------------------------------------------------
# Configs as the models publish them
# --------------------------------------------------------------------------------------------

HF_CLIP_OLD = {  # openai/clip-vit-base-patch32 (and -patch16, -large-patch14)
    "crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": OPENAI_MEAN,
    "image_std": OPENAI_STD, "resample": 3, "size": 224}
HF_CLIP_336 = dict(HF_CLIP_OLD, crop_size=336, size=336)  # openai/clip-vit-large-patch14-336
HF_CLIP_NEW = {  # laion/CLIP-ViT-H-14-laion2B-s32B-b79K (transformers 4.3x save format)
    "crop_size": {"height": 224, "width": 224}, "do_center_crop": True, "do_convert_rgb": True,
    "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": OPENAI_MEAN,
    "image_processor_type": "CLIPImageProcessor", "image_std": OPENAI_STD, "resample": 3,
    "rescale_factor": RESCALE, "size": {"shortest_edge": 224}}
HF_DFN5B_378 = {  # apple/DFN5B-CLIP-ViT-H-14-378 preprocessor_config.json
    "crop_size": 378, "do_center_crop": True, "do_normalize": True, "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": OPENAI_MEAN,
    "image_std": OPENAI_STD, "resample": 3, "size": 378}


def hf_siglip(size: int, resample: int) -> dict:
    """google/siglip-*-{size} (resample 3) and google/siglip2-*-{size} (resample 2)."""
    return {"do_normalize": True, "do_rescale": True, "do_resize": True,
            "image_mean": [0.5, 0.5, 0.5], "image_processor_type": "SiglipImageProcessor",
            "image_std": [0.5, 0.5, 0.5], "processor_class": "SiglipProcessor",
            "resample": resample, "rescale_factor": RESCALE,
            "size": {"height": size, "width": size}}


HF_SIGLIP2_FIXRES = dict(hf_siglip(256, 2), do_convert_rgb=None)
HF_VIT_SQUASH = {"do_normalize": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5],
                 "image_processor_type": "ViTImageProcessor", "image_std": [0.5, 0.5, 0.5],
                 "resample": 2, "size": 224}
HF_CLIP_NO_NORM = dict(HF_CLIP_NEW, do_normalize=False, resample=2)
HF_CLIP_NO_RESCALE = dict(HF_CLIP_NEW, do_rescale=False)
HF_CLIP_PAD = dict(HF_CLIP_NEW, size={"shortest_edge": 199}, crop_size={"height": 224,
                                                                         "width": 225})


def open_clip_config(image_size, **preprocess) -> dict:
    """An open_clip_config.json as open_clip's hub export writes it."""
    return {"model_cfg": {"embed_dim": 1024, "vision_cfg": {"image_size": image_size,
                                                            "layers": 32, "width": 1280,
                                                            "patch_size": 14},
                          "text_cfg": {"context_length": 77, "vocab_size": 49408,
                                       "width": 1024, "heads": 16, "layers": 24}},
            "preprocess_cfg": preprocess}


OC_DFN5B_378 = dict(open_clip_config(378, mean=OPENAI_MEAN, std=OPENAI_STD,
                                     interpolation="bicubic", resize_mode="squash"))
OC_DFN5B_378["model_cfg"]["quick_gelu"] = True
OC_MOBILECLIP_S2 = {  # apple/MobileCLIP-S2-OpenCLIP
    "model_cfg": {"embed_dim": 512, "vision_cfg": {"timm_model_name": "fastvit_mci2",
                                                   "timm_model_pretrained": False,
                                                   "timm_pool": "avg", "timm_proj": None,
                                                   "timm_drop": 0.0, "timm_drop_path": 0.0,
                                                   "image_size": 256},
                  "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512,
                               "heads": 8, "layers": 12, "no_causal_mask": True},
                  "custom_text": True},
    "preprocess_cfg": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0],
                       "interpolation": "bilinear", "resize_mode": "shortest"}}
OC_PE_CORE_336 = open_clip_config(336, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5],
                                  interpolation="bilinear", resize_mode="squash")
OC_SIGLIP2_256 = open_clip_config(256, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5],
                                  interpolation="bicubic", resize_mode="squash")
OC_CLIPA_224 = open_clip_config(224, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225],
                                interpolation="bilinear", resize_mode="squash")
OC_LONGEST_FILL = open_clip_config(224, interpolation="bicubic", resize_mode="longest",
                                   fill_color=[124, 116, 104])
OC_LONGEST_RECT = open_clip_config([192, 256], interpolation="bilinear", resize_mode="longest",
                                   fill_color=128, mean=0.5, std=0.25)
OC_DEFAULTS = {"model_cfg": {"vision_cfg": {"image_size": 240}}, "preprocess_cfg": {}}

# profile name -> (how it is stored in profiles_dir, library, config)
IMPORTED = {
    "clip-old-format": ("file", "hf", HF_CLIP_OLD),
    "clip-336-old-format": ("file", "hf", HF_CLIP_336),
    "clip-new-format": ("folder", "hf", HF_CLIP_NEW),
    "siglip-256-hf": ("folder", "hf", hf_siglip(256, 3)),
    "siglip2-256-hf": ("file", "hf", HF_SIGLIP2_FIXRES),
    "vit-squash": ("file", "hf", HF_VIT_SQUASH),
    "clip-no-normalise": ("file", "hf", HF_CLIP_NO_NORM),
    "clip-no-rescale": ("file", "hf", HF_CLIP_NO_RESCALE),
    "clip-pad-floor": ("file", "hf", HF_CLIP_PAD),
    "DFN5B-CLIP-ViT-H-14-378": ("both", "open_clip", OC_DFN5B_378),
    "MobileCLIP-S2-OpenCLIP": ("folder", "open_clip", OC_MOBILECLIP_S2),
    "pe-core-336": ("file", "open_clip", OC_PE_CORE_336),
    "siglip2-256-openclip": ("folder", "open_clip", OC_SIGLIP2_256),
    "clipa-224": ("file", "open_clip", OC_CLIPA_224),
    "longest-fill": ("file", "open_clip", OC_LONGEST_FILL),
    "longest-rect": ("file", "open_clip", OC_LONGEST_RECT),
    "open-clip-defaults": ("file", "open_clip", OC_DEFAULTS),
}


def _write_profiles_dir(root: Path) -> Path:
    d = root / "profiles"
    d.mkdir()
    for name, (how, lib, cfg) in IMPORTED.items():
        fname = "preprocessor_config.json" if lib == "hf" else "open_clip_config.json"
        if how == "file":
            (d / f"{name}.json").write_text(json.dumps(cfg, indent=2))
        else:
            (d / name).mkdir()
            (d / name / fname).write_text(json.dumps(cfg, indent=2))
            (d / name / "config.json").write_text("{}")  # other files of the download
            if how == "both":
                (d / name / "preprocessor_config.json").write_text(json.dumps(HF_DFN5B_378))
    # the default profile of base_config
    shutil.copy(PROFILES_DIR / "clip-224.json", d / "clip-224.json")
    return d


@pytest.fixture(scope="module")
def imported(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("model-configs")
    d = _start(request, root / "daemon", base_config(profiles_dir=str(_write_profiles_dir(root))))
    yield d
    assert d.stop() == 0, d.stderr_tail()


@pytest.mark.parametrize("name", sorted(IMPORTED))
def test_imported_config_matches_its_library(imported, name):
    how, lib, cfg = IMPORTED[name]
    transform = open_clip_cfg_transform(cfg) if lib == "open_clip" else None
    for key, data in INPUTS.items():
        want = run_transform(transform, data) if transform else hf_tensor(cfg, data)
        ref = "open_clip" if lib == "open_clip" else "transformers5-pil"
        assert_same(daemon_tensor(imported, name, data, ref), want, f"{name} on {key}")


def test_imported_profiles_are_listed_with_their_default_reference(imported):
    r = imported.get("/v1/profiles")
    assert r.status_code == 200, describe_error(r)
    listed = {p["name"]: p for p in r.json()["profiles"]}
    assert set(IMPORTED) <= set(listed)
    for name, (_, lib, _) in IMPORTED.items():
        p = listed[name]
        if lib == "open_clip":
            assert p["default_reference"] == "open_clip", p
            assert p["crop"] is None or p["crop"]["rounding"] == "half_even", p
        else:  # the daemon-wide default_reference applies
            assert p["default_reference"] == "transformers4", p
            assert p["crop"] is None or p["crop"]["rounding"] == "floor", p
    assert listed["longest-fill"]["fill"] == [124, 116, 104]
    assert listed["longest-rect"]["resize"] == {"height": 192, "width": 256,
                                                "keep_aspect": "longest"}
    # DFN5B: open_clip's squash wins over the HF file's resize + crop, with a warning
    assert listed["DFN5B-CLIP-ViT-H-14-378"]["resize"] == {"height": 378, "width": 378}
    assert listed["DFN5B-CLIP-ViT-H-14-378"]["crop"] is None
    warned = imported.wait_log("profile configs disagree")
    assert any(rec.get("profile") == "DFN5B-CLIP-ViT-H-14-378" and "squash" in rec["detail"]
               for rec in warned), warned


# --------------------------------------------------------------------------------------------
# clipprepd profile import
# --------------------------------------------------------------------------------------------

def test_cli_import_prints_a_native_profile_and_warns_on_disagreement(request, tmp_path):
    binary = request.config.getoption("--daemon-bin")
    folder = tmp_path / "DFN5B-CLIP-ViT-H-14-378"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps(OC_DFN5B_378))
    (folder / "preprocessor_config.json").write_text(json.dumps(HF_DFN5B_378))
    r = subprocess.run([binary, "profile", "import", str(folder)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    assert p["name"] == "DFN5B-CLIP-ViT-H-14-378" and p["default_reference"] == "open_clip"
    assert p["resize"] == {"height": 378, "width": 378} and p["crop"] is None
    assert "disagree" in r.stderr and "squash" in r.stderr and "crop 378x378" in r.stderr

    # the printed profile loads back as a native profile and gives the same tensor
    out = tmp_path / "profiles"
    out.mkdir()
    r = subprocess.run([binary, "profile", "import", str(folder / "preprocessor_config.json"),
                        "--name", "dfn5b-hf"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    (out / "dfn5b-hf.json").write_text(r.stdout)
    shutil.copy(PROFILES_DIR / "clip-224.json", out / "clip-224.json")
    d = _start(request, tmp_path / "d", base_config(profiles_dir=str(out)))
    try:
        for key in ("astronaut_640x480", "coffee_333x517"):
            assert_same(daemon_tensor(d, "dfn5b-hf", INPUTS[key], "transformers5-pil"),
                        hf_tensor(HF_DFN5B_378, INPUTS[key]), f"dfn5b-hf on {key}")
    finally:
        assert d.stop() == 0


def test_cli_import_refuses_a_bad_config_by_key(request, tmp_path):
    binary = request.config.getoption("--daemon-bin")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(HF_CLIP_NEW, resample=1)))
    r = subprocess.run([binary, "profile", "import", str(bad)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and r.stdout == ""
    assert "bad.json" in r.stderr and '"resample"' in r.stderr and "LANCZOS" in r.stderr


def test_bad_config_in_profiles_dir_stops_the_start(run_cli, tmp_path):
    d = tmp_path / "profiles"
    d.mkdir()
    shutil.copy(PROFILES_DIR / "clip-224.json", d / "clip-224.json")
    (d / "m").mkdir()
    (d / "m" / "open_clip_config.json").write_text(json.dumps(
        open_clip_config(224, resize_mode="center")))
    r = run_cli(["--port", "0", "--backend", "cpu"], config=base_config(profiles_dir=str(d)),
                timeout=30)
    assert r.returncode != 0
    assert "open_clip_config.json" in r.stderr and "preprocess_cfg.resize_mode" in r.stderr, \
        r.stderr


# --------------------------------------------------------------------------------------------
# The shipped preset table
# --------------------------------------------------------------------------------------------

# Hugging Face presets: the preprocessor_config.json of the checkpoints each serves.
HF_PRESETS = {
    "clip-224": HF_CLIP_OLD,
    "clip-336": HF_CLIP_336,
    "siglip-224": hf_siglip(224, 3),
    "siglip-256": hf_siglip(256, 3),
    "siglip-384": hf_siglip(384, 3),
    "siglip-512": hf_siglip(512, 3),
    "siglip2-224": hf_siglip(224, 2),
    "siglip2-256": hf_siglip(256, 2),
    "siglip2-384": hf_siglip(384, 2),
    "siglip2-512": hf_siglip(512, 2),
}


def _presets() -> dict[str, dict]:
    """The classic presets; a vision-language preset ("vlm") is checked against its processor
    by its family's tests/reference/test_vlm_*.py."""
    out = {p.stem: json.loads(p.read_text()) for p in sorted(PROFILES_DIR.glob("*.json"))}
    return {k: v for k, v in out.items() if "vlm" not in v}


PRESETS = _presets()


def _open_clip_ids(preset: dict) -> list[tuple[str, str]]:
    ids = [m.split(" ", 1)[1] for m in preset.get("models", []) if m.startswith("open_clip ")]
    return [tuple(i.split("/", 1)) for i in ids]


def test_every_preset_names_its_models_and_is_checked_here():
    for name, p in PRESETS.items():
        assert p.get("models"), f"{name}: lists no model ids"
        assert name in HF_PRESETS or _open_clip_ids(p), f"{name}: no library check"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_matches_its_library(daemon, name):
    preset = PRESETS[name]
    checks = []
    if name in HF_PRESETS:
        checks.append(("transformers5-pil",
                       lambda data, c=HF_PRESETS[name]: hf_tensor(c, data)))
    for model, tag in _open_clip_ids(preset):
        t = open_clip_pretrained_transform(model, tag)
        checks.append(("open_clip", lambda data, t=t: run_transform(t, data)))
    assert checks
    for key in PHOTOS:
        got = {}
        for reference, ref in checks:
            if reference not in got:
                got[reference] = daemon_tensor(daemon, name, INPUTS[key], reference)
            assert_same(got[reference], ref(INPUTS[key]), f"{name} ({reference}) on {key}")
        if key == PHOTOS[0] and preset.get("default_reference") == "open_clip":
            assert_same(daemon_tensor(daemon, name, INPUTS[key], None), got["open_clip"],
                        f"{name} without a reference parameter on {key}")


def test_profiles_listing_carries_model_ids(daemon):
    r = daemon.get("/v1/profiles")
    assert r.status_code == 200, describe_error(r)
    listed = {p["name"]: p for p in r.json()["profiles"]}
    assert set(PRESETS) <= set(listed)
    assert "apple/DFN5B-CLIP-ViT-H-14-378" in listed["dfn5b-h14-378"]["models"]
    assert "google/siglip2-base-patch16-224" in listed["siglip2-224"]["models"]
    assert "openai/clip-vit-large-patch14-336" in listed["clip-336"]["models"]
