"""Reference preprocessing for the parity tests (spec: shared/spec/reference-preprocessing.md).

Three kinds of reference, all computed from the same encoded bytes the daemon receives:

* `hf_clip(b, size, crop)` — transformers' slow `CLIPImageProcessor` (PIL + numpy path) on
  `Image.open(BytesIO(b))`, i.e. a PIL image, so **no EXIF orientation** (daemon default
  exif=0). With `exif=True` the image is first passed through `ImageOps.exif_transpose`, which is
  what HF's `load_image` does for string inputs (spec B.1, E).
* `siglip(b, size)` — transformers' `SiglipImageProcessor`, resize straight to size x size,
  no crop, mean = std = 0.5, with `do_convert_rgb=True` forced (the 4.57 class default is None,
  spec D).
* `open_clip(b, size)` — an emulation (no torch / open_clip installed) of open_clip's eval
  transform on a PIL image (spec C.1-C.3): resize the short side with the trunc rule and
  `Image.resize(BICUBIC)` **in the image's own mode**, centre-crop with round-half-even
  offsets, *then* convert to RGB, ToTensor (f32(u)/255), Normalize in float32.

And the uint8-stage reference `u8_stage(...)`: convert("RGB") -> `Image.resize` -> crop with
the profile's rounding -> u8 array; the float output is that array mapped through the 3x256
float32 table of spec B.7/B.8 (`norm_table`, `apply_table`). `recover_u8` inverts the table
on a daemon tensor, so that a mismatch can be reported in u8 levels.

Channel-inference quirk (spec B.3): transformers v4 infers channels-first for any array whose
first dimension is 1 or 3, so a PIL image 1 or 3 pixels tall is misprocessed (3 tall: silently
transposed; 1 tall: processed as a 1-channel image). The references here pass
`input_data_format="channels_last"`, which is the intended behaviour and what the daemon
implements; tests/parity/test_reference.py documents the quirk itself.
"""
from __future__ import annotations

import functools
import io
import logging
import os
import warnings
from dataclasses import dataclass

os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
HALF = (0.5, 0.5, 0.5)
RESCALE = 0.00392156862745098  # 1/255 as stored in the HF configs


@dataclass(frozen=True)
class Profile:
    name: str
    family: str                # "hf_clip" | "open_clip" | "siglip"
    resize: str                # "shortest_edge" | "exact"
    size: int                  # shortest edge, or exact height = width
    crop: int | None           # square crop size, None for no crop
    rounding: str | None       # "floor" (HF) | "half_even" (torchvision/open_clip) | None
    mean: tuple
    std: tuple

    @property
    def out_hw(self) -> tuple[int, int]:
        s = self.crop if self.crop is not None else self.size
        return (s, s)


# The shipped profiles, as the spec defines them (independent of config/profiles/*.json).
PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("clip-224", "hf_clip", "shortest_edge", 224, 224, "floor", OPENAI_MEAN, OPENAI_STD),
    Profile("clip-336", "hf_clip", "shortest_edge", 336, 336, "floor", OPENAI_MEAN, OPENAI_STD),
    Profile("openclip-224", "open_clip", "shortest_edge", 224, 224, "half_even", OPENAI_MEAN,
            OPENAI_STD),
    Profile("siglip-224", "siglip", "exact", 224, None, None, HALF, HALF),
    Profile("siglip-384", "siglip", "exact", 384, None, None, HALF, HALF),
)}

# The emulation here runs Pillow 11.3 (this venv); the daemon's open_clip reference follows
# Pillow 13 (what open_clip 3.3 installs). They differ in 16-bit resampling overflow (Pillow
# #9480), so "I;16" inputs are compared with the real open_clip in tests/reference only.
OPEN_CLIP_EMULATED_MODES_EXCLUDED = ("I;16",)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

def open_image(data: bytes, exif: bool = False) -> Image.Image:
    """Image.open on the bytes, fully loaded; with exif=True, EXIF-transposed as HF's
    load_image does (ImageOps.exif_transpose)."""
    im = Image.open(io.BytesIO(data))
    im.load()
    if exif:
        im = ImageOps.exif_transpose(im)
    return im


@functools.lru_cache(maxsize=None)
def _transformers():
    import transformers
    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    return transformers


@functools.lru_cache(maxsize=None)
def clip_processor(size: int, crop: int):
    t = _transformers()
    return t.CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": crop, "width": crop}, resample=3,
        do_resize=True, do_center_crop=True, do_rescale=True, rescale_factor=RESCALE,
        do_normalize=True, image_mean=list(OPENAI_MEAN), image_std=list(OPENAI_STD),
        do_convert_rgb=True)


@functools.lru_cache(maxsize=None)
def siglip_processor(size: int):
    t = _transformers()
    return t.SiglipImageProcessor(
        size={"height": size, "width": size}, resample=3, do_resize=True, do_rescale=True,
        rescale_factor=RESCALE, do_normalize=True, image_mean=list(HALF), image_std=list(HALF),
        do_convert_rgb=True)


def _run_processor(proc, im: Image.Image, infer_channels: bool = False) -> np.ndarray:
    kw = {} if infer_channels else {"input_data_format": "channels_last"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = proc(images=im, return_tensors="np", **kw)["pixel_values"]
    assert out.dtype == np.float32, out.dtype
    return np.ascontiguousarray(out)


# --------------------------------------------------------------------------------------------
# Hugging Face references
# --------------------------------------------------------------------------------------------

def hf_clip(img_bytes: bytes, size: int = 224, crop: int = 224, exif: bool = False,
            infer_channels: bool = False) -> np.ndarray:
    """transformers.CLIPImageProcessor (slow, PIL path) -> float32 (1, 3, crop, crop).
    infer_channels=True reproduces v4's shape-based channel inference (quirk for H in {1,3})."""
    return _run_processor(clip_processor(size, crop), open_image(img_bytes, exif), infer_channels)


def siglip(img_bytes: bytes, size: int = 224, exif: bool = False,
           infer_channels: bool = False) -> np.ndarray:
    """transformers.SiglipImageProcessor with do_convert_rgb=True -> float32 (1, 3, S, S)."""
    return _run_processor(siglip_processor(size), open_image(img_bytes, exif), infer_channels)


# --------------------------------------------------------------------------------------------
# uint8-stage reference and the normalisation table
# --------------------------------------------------------------------------------------------

def shortest_edge_size(w: int, h: int, s: int) -> tuple[int, int]:
    """Spec B.4 / C.2: short side -> s, long side trunc(s*long/short) (float quotient)."""
    if w <= h:
        return s, int(s * h / w)
    return int(s * w / h), s


def crop_offset(length: int, crop: int, rounding: str) -> int:
    """Offset of a centred crop window (length >= crop). Spec B.6 (floor), C.3 (half even)."""
    if rounding == "floor":
        return (length - crop) // 2
    if rounding == "half_even":
        return int(round((length - crop) / 2))  # Python round: ties to even
    raise ValueError(rounding)


def _center_crop(a: np.ndarray, crop: int, rounding: str) -> np.ndarray:
    """Centre crop of an (H, W, C) array with zero padding where the image is smaller (B.6, C.3)."""
    h, w = a.shape[:2]
    if h >= crop and w >= crop:
        t, l = crop_offset(h, crop, rounding), crop_offset(w, crop, rounding)
        return a[t:t + crop, l:l + crop]
    canvas = np.zeros((max(h, crop), max(w, crop)) + a.shape[2:], a.dtype)
    def pad_before(d):  # HF: odd extra row/column on top/left; torchvision: bottom/right
        return -(-d // 2) if rounding == "floor" else d // 2
    t0, l0 = pad_before(max(0, crop - h)), pad_before(max(0, crop - w))
    canvas[t0:t0 + h, l0:l0 + w] = a
    ch, cw = canvas.shape[:2]
    t, l = crop_offset(ch, crop, rounding), crop_offset(cw, crop, rounding)
    return canvas[t:t + crop, l:l + crop]


def resize_for(profile: Profile, im: Image.Image) -> Image.Image:
    """Image.resize (Pillow BICUBIC, no reducing_gap) to the profile's resize target."""
    w, h = im.size
    if profile.resize == "shortest_edge":
        tw, th = shortest_edge_size(w, h, profile.size)
    else:
        tw, th = profile.size, profile.size
    return im.resize((tw, th), Image.BICUBIC)


def u8_stage(img_bytes: bytes, profile: Profile | str, exif: bool = False,
             rounding: str | None = None) -> np.ndarray:
    """HF order: convert("RGB") -> Image.resize(BICUBIC) -> crop with the profile's rounding
    (or `rounding`) -> uint8 (H, W, 3). The bit-exact target of the daemon's u8 stage."""
    p = PROFILES[profile] if isinstance(profile, str) else profile
    if p.family == "open_clip" and rounding is None:
        return open_clip_u8(img_bytes, p.size, exif)
    im = open_image(img_bytes, exif)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if im.mode != "RGB":
            im = im.convert("RGB")
    a = np.asarray(resize_for(p, im))
    if p.crop is not None:
        a = _center_crop(a, p.crop, rounding or p.rounding)
    return np.ascontiguousarray(a)


@functools.lru_cache(maxsize=None)
def norm_table(mean: tuple, std: tuple) -> np.ndarray:
    """The (3, 256) float32 table of spec B.7/B.8:
    x = f32(f64(u) * 0.00392156862745098); y = (x - f32(mean_c)) / f32(std_c) in float32."""
    u = np.arange(256, dtype=np.float64)
    x = (u * RESCALE).astype(np.float32)
    m = np.asarray(mean, dtype=np.float32)[:, None]
    s = np.asarray(std, dtype=np.float32)[:, None]
    t = (x[None, :] - m) / s
    assert t.dtype == np.float32
    t.setflags(write=False)
    return t


def table_for(profile: Profile | str) -> np.ndarray:
    p = PROFILES[profile] if isinstance(profile, str) else profile
    return norm_table(tuple(p.mean), tuple(p.std))


def apply_table(u8: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 via the per-channel table."""
    chw = u8.transpose(2, 0, 1)
    out = np.empty(chw.shape, np.float32)
    for c in range(3):
        out[c] = table[c][chw[c]]
    return out[None]


def recover_u8(tensor: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Inverse of apply_table for one image: (3, H, W) float -> (3, H, W) int16, each value the
    u whose table entry equals the float exactly, or -1 where no entry matches (float16 tensors
    are compared against the float16-rounded table)."""
    t = table.astype(tensor.dtype)
    out = np.full(tensor.shape, -1, np.int16)
    for c in range(3):
        col = t[c]
        order = np.argsort(col, kind="stable")
        srt = col[order]
        v = tensor[c]
        idx = np.clip(np.searchsorted(srt, v), 0, 255)
        hit = srt[idx] == v
        out[c][hit] = order[idx[hit]]
    return out


def to_float(profile: Profile | str, img_bytes: bytes, exif: bool = False,
             rounding: str | None = None) -> np.ndarray:
    """u8_stage + table: (1, 3, H, W) float32."""
    return apply_table(u8_stage(img_bytes, profile, exif, rounding), table_for(profile))


# --------------------------------------------------------------------------------------------
# open_clip emulation (spec C.1-C.5)
# --------------------------------------------------------------------------------------------

def open_clip_u8(img_bytes: bytes, size: int = 224, exif: bool = False) -> np.ndarray:
    """open_clip eval transform up to the u8 crop: Resize(size, BICUBIC) in the image's own mode
    (Pillow forces NEAREST for P and 1, premultiplies RGBA/LA), CenterCrop with half-even
    offsets and zero padding bottom/right, then convert("RGB"). Returns (H, W, 3) uint8.
    exif=True: on the exif_transpose'd image (the daemon's exif=1 option)."""
    im = open_image(img_bytes, exif=exif)
    w, h = im.size
    tw, th = shortest_edge_size(w, h, size)
    if (tw, th) != (w, h):
        im = im.resize((tw, th), Image.BICUBIC)
    # torchvision CenterCrop on PIL: pad (if needed) then crop at round((L - c) / 2).
    w, h = im.size
    if w < size or h < size:
        # Only reachable for sizes smaller than the crop, never with shortest_edge == crop.
        raise NotImplementedError("open_clip padding path not emulated")
    t, l = crop_offset(h, size, "half_even"), crop_offset(w, size, "half_even")
    im = im.crop((l, t, l + size, t + size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im))


def open_clip(img_bytes: bytes, size: int = 224, exif: bool = False) -> np.ndarray:
    """open_clip eval transform -> (1, 3, size, size) float32: ToTensor = f32(u)/255 (float32
    division), Normalize = (x - f32(mean)) / f32(std) in float32."""
    u = open_clip_u8(img_bytes, size, exif).transpose(2, 0, 1).astype(np.float32)
    x = u / np.float32(255)
    m = np.asarray(OPENAI_MEAN, np.float32)[:, None, None]
    s = np.asarray(OPENAI_STD, np.float32)[:, None, None]
    y = (x - m) / s
    assert y.dtype == np.float32
    return np.ascontiguousarray(y[None])


# --------------------------------------------------------------------------------------------
# What the daemon must return
# --------------------------------------------------------------------------------------------

def expected(profile: str, img_bytes: bytes, exif: bool = False) -> tuple[np.ndarray, str]:
    """The reference float32 (1, 3, H, W) tensor for a profile, and a label saying which
    reference produced it."""
    p = PROFILES[profile]
    if p.family == "hf_clip":
        return hf_clip(img_bytes, p.size, p.crop, exif=exif), "transformers CLIPImageProcessor"
    if p.family == "siglip":
        return siglip(img_bytes, p.size, exif=exif), "transformers SiglipImageProcessor"
    if p.family == "open_clip":
        # The profile's default reference is open_clip: resize in the image's own mode (Pillow
        # 11.3 here; the real open_clip with Pillow 13 is in tests/reference).
        return open_clip(img_bytes, p.size, exif), "open_clip eval transform (emulated)"
    raise ValueError(p.family)


def versions() -> dict[str, str]:
    import PIL
    t = _transformers()
    return {"pillow": PIL.__version__, "numpy": np.__version__, "transformers": t.__version__}
