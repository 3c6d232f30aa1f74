"""Self-tests of the references (no daemon needed).

They pin our understanding of the reference stacks: Pillow's resampler on the spec's unit
vectors, the normalisation table, the size/crop rules, and — the important one — that the
uint8-stage reference plus the 3x256 table reproduces transformers' CLIPImageProcessor and
SiglipImageProcessor outputs exactly on the whole corpus.
"""
import numpy as np
import PIL
import pytest
from PIL import Image

import images
import reference as ref

PINNED_PILLOW = "11.3.0"


def test_pinned_versions(record_property):
    v = ref.versions()
    print(f"\nreference versions: {v}")
    for k, val in v.items():
        record_property(k, val)
    assert PIL.__version__ == PINNED_PILLOW, (
        f"parity results are pinned to Pillow {PINNED_PILLOW} (spec A.9); found {PIL.__version__}")
    assert v["transformers"] == "4.57.1"
    assert v["numpy"] == "2.2.6"


@pytest.mark.parametrize("resample,width,expect", [
    (Image.BICUBIC, 3, [112, 127, 143]),
    (Image.BICUBIC, 13, [0, 109, 254, 71, 45, 246, 128, 9, 210, 184, 1, 146, 255]),
    (Image.BILINEAR, 3, [121, 128, 134]),
    (Image.BILINEAR, 13, [0, 108, 245, 88, 69, 226, 128, 29, 186, 167, 10, 147, 255]),
])
def test_pillow_resample_unit_vectors(resample, width, expect):
    """Spec A.11: the 8x1 alternating 0/255 image resized by Pillow."""
    im = Image.fromarray(np.array([[0, 255] * 4], np.uint8))
    out = np.asarray(im.resize((width, 1), resample))[0].tolist()
    assert out == expect


def test_norm_table_sample_values():
    """Spec B.8 sample values, and B.7: f32(f64(u)*(1/255)) == f32(u)/255 for all u."""
    t = ref.norm_table(ref.OPENAI_MEAN, ref.OPENAI_STD)
    assert t.shape == (3, 256) and t.dtype == np.float32
    want = {0: (-1.7922625541687012, -1.7520971298217773, -1.480219841003418),
            128: (0.07633614540100098, 0.16889731585979462, 0.33994877338409424),
            255: (1.9303361177444458, 2.0748836994171143, 2.1458969116210938)}
    for u, vals in want.items():
        assert [float(t[c, u]) for c in range(3)] == list(vals), u
    u = np.arange(256)
    assert np.array_equal((u.astype(np.float64) * ref.RESCALE).astype(np.float32),
                          u.astype(np.float32) / np.float32(255))
    # Strictly increasing per channel, so recover_u8 is well defined.
    assert (np.diff(t, axis=1) > 0).all()
    s = ref.norm_table(ref.HALF, ref.HALF)
    assert s[0, 0] == -1.0 and s[0, 255] == 1.0


def test_recover_u8_roundtrip():
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    for p in ref.PROFILES.values():
        t = ref.table_for(p)
        f = ref.apply_table(u8, t)
        assert np.array_equal(ref.recover_u8(f[0], t), u8.transpose(2, 0, 1))
        f16 = f.astype(np.float16)
        assert np.array_equal(ref.recover_u8(f16[0], t), u8.transpose(2, 0, 1))
        bad = f[0].copy()
        bad[0, 0, 0] = np.nextafter(bad[0, 0, 0], np.float32(9))
        assert ref.recover_u8(bad, t)[0, 0, 0] == -1


@pytest.mark.parametrize("w,h,s,expect", [
    (1000, 667, 224, (335, 224)), (640, 480, 224, (298, 224)), (500, 333, 224, (336, 224)),
    (333, 500, 224, (224, 336)), (1920, 1080, 336, (597, 336)), (3000, 20, 224, (33600, 224)),
    (20, 20, 224, (224, 224)), (1, 1, 224, (224, 224)), (4000, 3000, 224, (298, 224)),
])
def test_shortest_edge_size(w, h, s, expect):
    assert ref.shortest_edge_size(w, h, s) == expect


@pytest.mark.parametrize("length,crop,floor,half_even", [
    (335, 224, 55, 56), (298, 224, 37, 37), (336, 224, 56, 56), (225, 224, 0, 0),
    (227, 224, 1, 2), (503, 336, 83, 84), (224, 224, 0, 0),
])
def test_crop_offsets(length, crop, floor, half_even):
    """Spec B.6 / C.3: open_clip's offset is one larger when (L - S) % 4 == 3."""
    assert ref.crop_offset(length, crop, "floor") == floor
    assert ref.crop_offset(length, crop, "half_even") == half_even


def _ids(items):
    return [i.name for i in items]


CLIP_CASES = [(p, it) for p in ("clip-224", "clip-336") for it in images.corpus()
              if p == "clip-224" or "huge" not in it.tags]


@pytest.mark.parametrize("profile,item", CLIP_CASES,
                         ids=[f"{p}-{it.name}" for p, it in CLIP_CASES])
def test_hf_clip_equals_u8_stage_plus_table(profile, item):
    """transformers' CLIPImageProcessor == convert -> Image.resize -> floor crop -> table."""
    p = ref.PROFILES[profile]
    hf = ref.hf_clip(item.data, p.size, p.crop)
    mine = ref.to_float(p, item.data)
    assert hf.shape == mine.shape == (1, 3, p.crop, p.crop)
    d = np.abs(hf.astype(np.float64) - mine)
    assert d.max() == 0, f"{item.name} {profile}: max |d| {d.max()} at {np.unravel_index(d.argmax(), d.shape)}"


SIGLIP_CASES = [(p, it) for p in ("siglip-224", "siglip-384") for it in images.corpus()
                if "huge" not in it.tags]


@pytest.mark.parametrize("profile,item", SIGLIP_CASES,
                         ids=[f"{p}-{it.name}" for p, it in SIGLIP_CASES])
def test_hf_siglip_equals_u8_stage_plus_table(profile, item):
    p = ref.PROFILES[profile]
    hf = ref.siglip(item.data, p.size)
    mine = ref.to_float(p, item.data)
    assert hf.shape == mine.shape == (1, 3, p.size, p.size)
    d = np.abs(hf.astype(np.float64) - mine)
    assert d.max() == 0, f"{item.name} {profile}: max |d| {d.max()}"


@pytest.mark.parametrize("item", images.corpus("exif"), ids=_ids(images.corpus("exif")))
def test_hf_clip_exif_equals_u8_stage_plus_table(item):
    """With EXIF applied (ImageOps.exif_transpose first, as HF's load_image does)."""
    hf = ref.hf_clip(item.data, 224, 224, exif=True)
    assert np.array_equal(hf, ref.to_float("clip-224", item.data, exif=True)), item.name
    o = item.pil.getexif().get(0x0112, 1)
    if o != 1:  # the transpose really changes the result
        assert not np.array_equal(hf, ref.hf_clip(item.data, 224, 224, exif=False)), item.name


OC_ITEMS = [it for it in images.corpus() if "huge" not in it.tags]


@pytest.mark.parametrize("item", OC_ITEMS, ids=_ids(OC_ITEMS))
def test_open_clip_emulation_vs_hf_order(item):
    """For RGB and L inputs open_clip's order (resize in the original mode, then RGB) gives the
    same u8 crop as the HF order with half-even offsets; for the other modes it does not (which
    is why the open_clip reference resizes in the image's own mode, native_mode.c): the test
    records the size of that difference."""
    oc = ref.open_clip(item.data, 224)
    hf_order_u8 = ref.u8_stage(item.data, "openclip-224", rounding="half_even")
    # ToTensor+Normalize (f32(u)/255) equals the HF table on the same u8 values (spec C.4/C.5).
    assert np.array_equal(oc, ref.apply_table(ref.open_clip_u8(item.data, 224),
                                              ref.table_for("openclip-224")))
    du8 = np.abs(ref.open_clip_u8(item.data, 224).astype(int) - hf_order_u8.astype(int))
    if item.mode in ("RGB", "L"):
        assert du8.max() == 0, (
            f"{item.name} ({item.mode}): open_clip order differs from HF order by {du8.max()} levels")
    else:
        print(f"\n{item.name} ({item.mode}): open_clip vs HF order: max {du8.max()} levels, "
              f"{(du8.max(axis=2) > 0).mean():.1%} of pixels")


def test_open_clip_crop_differs_from_hf_when_offsets_differ():
    """1000x667 -> 335x224: HF left = 55, open_clip left = 56 (spec C.3)."""
    b = images.get("coffee_1000x667_q90_420.jpg").data
    assert not np.array_equal(ref.u8_stage(b, "clip-224"), ref.u8_stage(b, "openclip-224"))
    assert np.array_equal(ref.u8_stage(b, "clip-224")[:, 1:], ref.u8_stage(b, "openclip-224")[:, :-1])


@pytest.mark.parametrize("name", images.names("h3") + images.names("h1"))
def test_hf_v4_channel_inference_quirk_documented(name):
    """Spec B.3: transformers 4.57's shape-based channel inference misreads a PIL image that is
    1 or 3 pixels tall as channels-first. The references (and the daemon) use the intended
    channels-last reading; this test documents that the quirk exists in the pinned version,
    i.e. that these corpus items are compared against `input_data_format="channels_last"`."""
    b = images.get(name).data
    intended = ref.hf_clip(b, 224, 224)
    assert np.array_equal(intended, ref.to_float("clip-224", b))
    try:
        quirky = ref.hf_clip(b, 224, 224, infer_channels=True)
    except Exception as e:  # 1 pixel tall: the processor raises
        print(f"\n{name}: default channel inference raises {type(e).__name__}: {e}")
        return
    assert quirky.shape != intended.shape or not np.array_equal(quirky, intended), (
        f"{name}: HF channel inference no longer differs; spec B.3 note is outdated")
    print(f"\n{name}: default channel inference gives shape {quirky.shape}, "
          f"max |d| {np.abs(quirky - intended).max() if quirky.shape == intended.shape else 'n/a'}")
