"""Every reference x every shipped profile x the corpus (photos re-encoded, every Pillow mode,
alpha, palette with transparency, 16-bit, CMYK, EXIF, extreme aspect ratios, 1x1), against
the real libraries: float32 max |diff| <= 1e-6, float16 equal to the reference's
astype(float16). The same file runs against the emulated CUDA executor in `make test-emu`.
transformers 4 is checked by tests/parity (its own venv)."""
from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest
from PIL import Image, ImageOps

import images
import refs
from conftest import PROFILES_DIR, decode_npy, describe_error

REFERENCES = ("transformers5", "transformers5-pil", "open_clip")
# The five original profiles, plus two presets standing for the geometry/normalisation classes
# the preset table added (bilinear + no normalisation, bilinear squash + ImageNet). The other
# presets differ only in sizes and statistics; test_model_configs.py checks each against its
# library (full corpus x 38 presets x 3 references would take ~15 minutes).
PROFILES = ["clip-224", "clip-336", "openclip-224", "siglip-224", "siglip-384",
            "mobileclip-256", "clipa-224"]
assert all((PROFILES_DIR / f"{p}.json").exists() for p in PROFILES)
# the 4000x3000 photos cost seconds per reference; two of them keep the large-downscale path
HUGE_KEPT = 2
BATCH = 12


def corpus():
    items, huge = [], 0
    for it in images.corpus():
        if "huge" in it.tags:
            huge += 1
            if huge > HUGE_KEPT:
                continue
        items.append(it)
    return items


def profile_json(name: str) -> dict:
    return json.loads((PROFILES_DIR / f"{name}.json").read_text())


def open_image(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def reference_tensor(fn, data: bytes) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow: palette transparency as bytes
        return fn(open_image(data))


def daemon_batch(daemon, items, profile, reference, dtype="float32") -> np.ndarray:
    r = daemon.post_batch([(it.name, it.data) for it in items], profile=profile, dtype=dtype,
                          params={"reference": reference})
    assert r.status_code == 200, f"{profile}/{reference}: {describe_error(r)}"
    return decode_npy(r.content)


@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("profile", PROFILES)
def test_bit_exact_float32(daemon, profile, reference):
    fn = refs.build(reference, profile_json(profile))
    items = corpus()
    bad = []
    for i in range(0, len(items), BATCH):
        chunk = items[i:i + BATCH]
        got = daemon_batch(daemon, chunk, profile, reference)
        for it, g in zip(chunk, got):
            want = reference_tensor(fn, it.data)
            assert g.shape == want.shape, (it.name, g.shape, want.shape)
            d = float(np.abs(g - want).max())
            if d > 1e-6:
                bad.append(f"{it.name}: max|diff| {d:.4g}")
    assert not bad, f"{profile} / {reference}: {len(bad)} of {len(items)} differ\n" + "\n".join(bad)


@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("profile", PROFILES)
def test_float16_is_the_reference_astype(daemon, profile, reference):
    fn = refs.build(reference, profile_json(profile))
    items = [it for it in corpus() if "mode" in it.tags or "edge" in it.tags][:BATCH]
    assert len(items) >= 8
    got = daemon_batch(daemon, items, profile, reference, dtype="float16")
    assert got.dtype == np.float16
    for it, g in zip(items, got):
        want = reference_tensor(fn, it.data).astype(np.float16)
        assert np.array_equal(g.view(np.uint16), want.view(np.uint16)), it.name


def _rgba_with_exif(orientation: int) -> bytes:
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, (90, 160, 4), dtype=np.uint8)
    a[..., 3] = np.where(a[..., 3] < 64, 0, a[..., 3])  # some fully transparent pixels
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(a, "RGBA").save(buf, "PNG", exif=exif.tobytes())
    return buf.getvalue()


def _cmyk_with_exif(orientation: int) -> bytes:
    im = images.photo("astronaut.png").resize((150, 100)).convert("CMYK")
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("orientation", (3, 6, 8))
def test_exif_orientation_in_every_mode(daemon, reference, orientation):
    """exif=1: the daemon transposes first; the reference is given exif_transpose's image."""
    fn = refs.build(reference, profile_json("clip-224"))
    for data in (_rgba_with_exif(orientation), _cmyk_with_exif(orientation)):
        im = ImageOps.exif_transpose(open_image(data))
        want = fn(im)
        r = daemon.post(data, profile="clip-224", exif=1, params={"reference": reference})
        assert r.status_code == 200, describe_error(r)
        got = decode_npy(r.content)[0]
        assert float(np.abs(got - want).max()) <= 1e-6, (reference, orientation, im.mode)


BILINEAR_PROFILES = {
    "t-clip-bilinear": {"resize": {"shortest_edge": 224},
                        "crop": {"height": 224, "width": 224, "rounding": "floor"}},
    "t-squash-bilinear": {"resize": {"height": 256, "width": 256}, "crop": None},
}


def test_bilinear_profiles(daemon_factory, tmp_path):
    """Bilinear goes another way in torchvision (native uint8 only with AVX2): a profile
    directory of bilinear variants, every reference, the corpus' mode and edge cases."""
    d = tmp_path / "profiles"
    d.mkdir()
    base = profile_json("clip-224")
    for name, geo in BILINEAR_PROFILES.items():
        p = dict(base, name=name, resample="bilinear", **geo)
        (d / f"{name}.json").write_text(json.dumps(p))
    daemon = daemon_factory({"profiles_dir": str(d), "default_profile": "t-clip-bilinear"})
    items = [it for it in corpus() if "huge" not in it.tags][:36]
    for name in BILINEAR_PROFILES:
        prof = json.loads((d / f"{name}.json").read_text())
        for reference in REFERENCES:
            fn = refs.build(reference, prof)
            for i in range(0, len(items), BATCH):
                chunk = items[i:i + BATCH]
                got = daemon_batch(daemon, chunk, name, reference)
                for it, g in zip(chunk, got):
                    want = reference_tensor(fn, it.data)
                    assert float(np.abs(g - want).max()) <= 1e-6, (name, reference, it.name)


def test_torch_runs_its_avx2_kernels():
    import torch
    assert torch.backends.cpu.get_cpu_capability() in ("AVX2", "DEFAULT"), (
        "tests/reference/conftest.py sets ATEN_CPU_CAPABILITY=avx2 before torch is imported")
