"""The test image corpus: real photographs re-encoded in many ways, plus generated edge cases.

Every item is (name, bytes, description). Items are built deterministically on first use and
cached under tests/parity/.cache/pillow-<version>/ (git-ignored); the cache is keyed by the
Pillow version because Pillow's bundled encoders produce the bytes.

Sources: the sample photographs that scikit-image ships inside its wheel (skimage/data/*.png,
*.jpg). They are read with Pillow straight from the package's data directory; skimage itself is
never imported (find_spec locates it without executing it).

PNG variants that Pillow cannot write (16-bit RGB/RGBA, 16-bit gray+alpha, 1/2/4-bit gray,
4-bit palette, Adam7 interlacing) come from a small PNG writer below that uses all five row
filters; every generated file is checked to open with Pillow at the expected size and mode.

    import images
    for item in images.corpus():        # list of CorpusItem, bytes built/loaded lazily
        item.name, item.data, item.description, item.mode, item.size, item.tags
        name, data, description = item
    images.items()                      # [(name, bytes, description), ...]
    images.get("coffee_1000x667_q90_420.jpg")

Tags: photo, orig (file as shipped), huge (4000x3000), edge, mode, exif, h1/h3 (1 or 3
pixels tall: transformers v4 channel-inference quirk, spec B.3).
"""
from __future__ import annotations

import functools
import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Callable

import numpy as np
import PIL
from PIL import Image

HERE = Path(__file__).resolve().parent
CACHE_ROOT = HERE / "parity" / ".cache"
CACHE_DIR = CACHE_ROOT / f"pillow-{PIL.__version__}"


# --------------------------------------------------------------------------------------------
# Source photographs
# --------------------------------------------------------------------------------------------

def skimage_data_dir() -> Path:
    spec = find_spec("skimage")
    if spec is None or spec.origin is None:
        raise RuntimeError("scikit-image is not installed (pip install -r tests/requirements.txt)")
    d = Path(spec.origin).parent / "data"
    if not (d / "astronaut.png").exists():
        raise RuntimeError(f"scikit-image data directory {d} lacks astronaut.png")
    return d


@functools.lru_cache(maxsize=None)
def photo(name: str) -> Image.Image:
    """A bundled photograph, decoded by Pillow, as RGB (or L for the gray ones)."""
    im = Image.open(skimage_data_dir() / name)
    im.load()
    if im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    return im


def _fit(im: Image.Image, w: int, h: int) -> Image.Image:
    """Centre-crop im to aspect w:h, then resize to exactly w x h (LANCZOS)."""
    sw, sh = im.size
    if sw * h > sh * w:  # too wide
        cw = max(1, round(sh * w / h))
        x0 = (sw - cw) // 2
        im = im.crop((x0, 0, x0 + cw, sh))
    else:
        ch = max(1, round(sw * h / w))
        y0 = (sh - ch) // 2
        im = im.crop((0, y0, sw, y0 + ch))
    if im.size != (w, h):
        im = im.resize((w, h), Image.LANCZOS)
    return im


def _add_noise(im: Image.Image, amplitude: int, seed: int) -> Image.Image:
    """Adds deterministic noise so that upscaled photos keep high frequencies."""
    a = np.asarray(im).astype(np.int16)
    rng = np.random.default_rng(seed)
    a = a + rng.integers(-amplitude, amplitude + 1, size=a.shape, dtype=np.int16)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def _sized(src: str, w: int, h: int, noise: int = 0, seed: int = 0) -> Image.Image:
    im = _fit(photo(src), w, h)
    if noise:
        im = _add_noise(im, noise, seed)
    return im


# --------------------------------------------------------------------------------------------
# Encoders
# --------------------------------------------------------------------------------------------

def jpeg(im: Image.Image, quality: int = 90, subsampling: str = "4:2:0", progressive: bool = False,
         exif: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    kw = dict(quality=quality, progressive=progressive, optimize=False)
    if im.mode in ("RGB", "YCbCr"):
        kw["subsampling"] = subsampling
    if exif is not None:
        kw["exif"] = exif
    im.save(buf, "JPEG", **kw)
    return buf.getvalue()


def png(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", **kw)
    return buf.getvalue()


def webp(im: Image.Image, lossless: bool = False, quality: int = 80, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "WEBP", lossless=lossless, quality=quality, method=4, **kw)
    return buf.getvalue()


def exif_orientation(o: int) -> bytes:
    ex = Image.Exif()
    ex[0x0112] = o
    return ex.tobytes()


# ---- minimal PNG writer (for what Pillow cannot write) -------------------------------------

_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _row_bytes(row: np.ndarray, bit_depth: int) -> np.ndarray:
    """One scanline (w, c) or (w,) of sample values -> packed bytes (uint8 array)."""
    if bit_depth == 16:
        return np.frombuffer(row.astype(">u2").tobytes(), dtype=np.uint8)
    if bit_depth == 8:
        return row.astype(np.uint8).reshape(-1)
    v = row.reshape(-1).astype(np.uint8)
    per = 8 // bit_depth
    pad = (-len(v)) % per
    v = np.concatenate([v, np.zeros(pad, np.uint8)]).reshape(-1, per)
    out = np.zeros(len(v), np.uint16)
    for k in range(per):
        out = (out << bit_depth) | v[:, k]
    return out.astype(np.uint8)


def _filter_row(f: int, cur: np.ndarray, prev: np.ndarray, bpp: int) -> bytes:
    x = cur.astype(np.int16)
    b = prev.astype(np.int16)
    a = np.concatenate([np.zeros(bpp, np.int16), x[:-bpp]]) if len(x) > bpp else np.zeros_like(x)
    if len(x) > bpp:
        a[:bpp] = 0
    c = np.concatenate([np.zeros(bpp, np.int16), b[:-bpp]]) if len(b) > bpp else np.zeros_like(b)
    if f == 0:
        out = x
    elif f == 1:
        out = x - a
    elif f == 2:
        out = x - b
    elif f == 3:
        out = x - ((a + b) >> 1)
    else:
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        out = x - pred
    return bytes([f]) + (out & 0xFF).astype(np.uint8).tobytes()


def png_raw(arr: np.ndarray, color_type: int, bit_depth: int, palette: bytes | None = None,
            trns: bytes | None = None, interlace: bool = False, exif: bytes | None = None) -> bytes:
    """Writes a PNG from sample values. arr: (h, w) for gray/palette, (h, w, c) otherwise.
    Row filters cycle through None/Sub/Up/Average/Paeth; IDAT is split into several chunks."""
    arr = np.asarray(arr)
    h, w = arr.shape[:2]
    ch = _CHANNELS[color_type]
    bpp = max(1, ch * bit_depth // 8)
    raw = bytearray()
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    rowno = 0
    for (x0, y0, dx, dy) in passes:
        sub = arr[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        prev = None
        for r in range(sub.shape[0]):
            cur = _row_bytes(sub[r], bit_depth)
            if prev is None:
                prev = np.zeros_like(cur)
            raw += _filter_row(rowno % 5, cur, prev, bpp)
            prev = cur
            rowno += 1
    z = zlib.compress(bytes(raw), 9)
    out = b"\x89PNG\r\n\x1a\n"
    out += _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0,
                                       1 if interlace else 0))
    if palette is not None:
        out += _chunk(b"PLTE", palette)
    if trns is not None:
        out += _chunk(b"tRNS", trns)
    if exif is not None:
        out += _chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    step = max(1, len(z) // 3 + 1)
    for i in range(0, len(z), step):
        out += _chunk(b"IDAT", z[i:i + step])
    out += _chunk(b"IEND", b"")
    return out


# --------------------------------------------------------------------------------------------
# Corpus definition
# --------------------------------------------------------------------------------------------

@dataclass
class CorpusItem:
    name: str
    description: str
    build: Callable[[], bytes] = field(repr=False)
    tags: frozenset = frozenset()
    _data: bytes | None = field(default=None, repr=False)

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = _cached(self.name, self.build)
        return self._data

    @property
    def pil(self) -> Image.Image:
        """The image as Pillow opens it (no EXIF transposition), fully loaded."""
        im = Image.open(io.BytesIO(self.data))
        im.load()
        return im

    @property
    def mode(self) -> str:
        return _mode_size(self.name, self.data)[0]

    @property
    def size(self) -> tuple[int, int]:
        return _mode_size(self.name, self.data)[1]

    def astuple(self) -> tuple[str, bytes, str]:
        return (self.name, self.data, self.description)

    def __iter__(self):  # name, data, description = item
        return iter(self.astuple())


@functools.lru_cache(maxsize=None)
def _mode_size(name: str, data: bytes):
    im = Image.open(io.BytesIO(data))
    return im.mode, im.size


def _cached(name: str, build: Callable[[], bytes]) -> bytes:
    path = CACHE_DIR / name
    if path.exists():
        return path.read_bytes()
    data = build()
    # Every generated file must open and decode with the reference decoder.
    im = Image.open(io.BytesIO(data))
    im.load()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return data


def _gray(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("L"))


def _rgba_with_holes() -> bytes:
    base = np.asarray(_sized("coffee.png", 640, 480)).copy()
    h, w = base.shape[:2]
    alpha = np.tile(np.linspace(0, 255, w).astype(np.uint8), (h, 1))
    alpha[100:220, 50:300] = 0           # fully transparent block, hidden colour kept bright
    base[100:220, 50:300] = (250, 30, 200)
    alpha[300:330, :] = 255
    alpha[400:, 400:] = 1
    return png(Image.fromarray(np.dstack([base, alpha])))


def _la() -> bytes:
    g = _gray(_sized("astronaut.png", 500, 333))
    a = np.tile(np.linspace(255, 0, g.shape[0]).astype(np.uint8)[:, None], (1, g.shape[1]))
    a[:40, :40] = 0
    return png(Image.fromarray(np.dstack([g, a])).convert("LA"))


def _gray16() -> bytes:
    g = _gray(_sized("camera.png", 640, 480)).astype(np.uint16)
    v = g * 4 + (np.arange(640, dtype=np.uint16)[None, :] % 4)  # 0..1023: above and below 255
    v[:, :64] = g[:, :64]                                           # a band entirely below 256
    v[:8, :] = 65535
    return png_raw(v, 0, 16)


def _rgb16() -> bytes:
    a = np.asarray(_sized("chelsea.png", 640, 480)).astype(np.uint16)
    rng = np.random.default_rng(16)
    low = rng.integers(0, 256, size=a.shape, dtype=np.uint16)
    return png_raw((a << 8) | low, 2, 16)  # high byte = photo, low byte = noise


def _rgba16() -> bytes:
    a = np.asarray(_sized("rocket.jpg", 333, 500)).astype(np.uint16)
    h, w = a.shape[:2]
    alpha = np.tile(np.linspace(0, 65535, w).astype(np.uint16), (h, 1))
    rng = np.random.default_rng(17)
    low = rng.integers(0, 256, size=a.shape, dtype=np.uint16)
    return png_raw(np.dstack([(a << 8) | low, alpha]), 6, 16)


def _gray_alpha16() -> bytes:
    g = _gray(_sized("coffee.png", 500, 333)).astype(np.uint16)
    alpha = np.tile(np.linspace(65535, 0, g.shape[0]).astype(np.uint16)[:, None], (1, g.shape[1]))
    return png_raw(np.dstack([(g << 8) | 0x7F, alpha]), 4, 16)


def _lowbit_gray(bits: int, w: int = 333, h: int = 500) -> bytes:
    g = _gray(_sized("rocket.jpg", w, h))
    return png_raw(g >> (8 - bits), 0, bits)


def _palette4() -> bytes:
    q = _sized("astronaut.png", 333, 500).quantize(16)
    pal = bytes(q.getpalette()[:48])
    return png_raw(np.asarray(q), 3, 4, palette=pal)


def _palette(trns: bool) -> bytes:
    q = _sized("coffee.png", 640, 480).quantize(256)
    if not trns:
        return png(q)
    alphas = bytes((i * 37) % 256 if i < 96 else 255 for i in range(256))
    return png(q, transparency=alphas)


def _rgb_trns() -> bytes:
    im = _sized("motorcycle_left.png", 500, 333)
    return png(im, transparency=tuple(int(v) for v in np.asarray(im)[10, 10]))


def _noise() -> bytes:
    rng = np.random.default_rng(1234)
    return png(Image.fromarray(rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)))


def _checker() -> bytes:
    y, x = np.mgrid[0:251, 0:333]
    a = (((x + y) & 1) * 255).astype(np.uint8)
    rgb = np.dstack([a, 255 - a, (x & 2) * 127])
    return png(Image.fromarray(rgb.astype(np.uint8)))


def _rows(src: str, w: int, h: int, at: float) -> Image.Image:
    """A w x h strip of a photo scaled to width w (or height h for tall strips)."""
    if w >= h:
        big = _sized(src, w, max(h, round(w * 2 / 3)))
        y0 = int((big.size[1] - h) * at)
        return big.crop((0, y0, w, y0 + h))
    big = _sized(src, max(w, round(h * 2 / 3)), h)
    x0 = int((big.size[0] - w) * at)
    return big.crop((x0, 0, x0 + w, h))


def _build_items() -> list[CorpusItem]:
    items: list[CorpusItem] = []

    def add(name, desc, build, *tags):
        items.append(CorpusItem(name, desc, build, frozenset(tags)))

    # ---- real photographs, resized and re-encoded ------------------------------------------
    a640 = lambda: _sized("astronaut.png", 640, 480)
    add("astronaut_640x480_q90_420.jpg", "photo 640x480, baseline JPEG q90 4:2:0",
        lambda: jpeg(a640()), "photo")
    add("astronaut_640x480_prog.jpg", "photo 640x480, progressive JPEG q90 4:2:0",
        lambda: jpeg(a640(), progressive=True), "photo")
    add("astronaut_640x480_444.jpg", "photo 640x480, baseline JPEG q90 4:4:4",
        lambda: jpeg(a640(), subsampling="4:4:4"), "photo")
    add("astronaut_640x480.png", "photo 640x480, RGB PNG", lambda: png(a640()), "photo")
    add("astronaut_640x480.webp", "photo 640x480, lossy WebP q80", lambda: webp(a640()), "photo")

    c1000 = lambda: _sized("coffee.png", 1000, 667, noise=3, seed=1)
    add("coffee_1000x667_q90_420.jpg", "photo 1000x667 (335x224: HF/open_clip crop differ), "
        "baseline JPEG q90 4:2:0", lambda: jpeg(c1000()), "photo")
    add("coffee_1000x667_prog.jpg", "photo 1000x667, progressive JPEG",
        lambda: jpeg(c1000(), progressive=True), "photo")
    add("coffee_1000x667_444.jpg", "photo 1000x667, JPEG 4:4:4 q95",
        lambda: jpeg(c1000(), quality=95, subsampling="4:4:4"), "photo")
    add("coffee_1000x667.png", "photo 1000x667, RGB PNG", lambda: png(c1000()), "photo")
    add("coffee_1000x667.webp", "photo 1000x667, lossy WebP", lambda: webp(c1000()), "photo")

    ch1080 = lambda: _sized("chelsea.png", 1920, 1080, noise=6, seed=2)
    add("chelsea_1920x1080_q90_420.jpg", "photo 1920x1080, baseline JPEG q90 4:2:0",
        lambda: jpeg(ch1080()), "photo")
    add("chelsea_1920x1080_prog.jpg", "photo 1920x1080, progressive JPEG",
        lambda: jpeg(ch1080(), progressive=True), "photo")
    add("chelsea_1920x1080.webp", "photo 1920x1080, lossy WebP", lambda: webp(ch1080()), "photo")

    r333 = lambda: _sized("rocket.jpg", 333, 500)
    add("rocket_333x500_q90_420.jpg", "photo 333x500 portrait, odd width, JPEG 4:2:0",
        lambda: jpeg(r333()), "photo")
    add("rocket_333x500_444.jpg", "photo 333x500, JPEG 4:4:4", lambda: jpeg(r333(), subsampling="4:4:4"),
        "photo")
    add("rocket_333x500_422.jpg", "photo 333x500, JPEG 4:2:2", lambda: jpeg(r333(), subsampling="4:2:2"),
        "photo")
    add("rocket_333x500.png", "photo 333x500, RGB PNG", lambda: png(r333()), "photo")
    add("rocket_333x500.webp", "photo 333x500, lossy WebP", lambda: webp(r333(), quality=60), "photo")

    add("motorcycle_500x333_q75_420.jpg", "photo 500x333 (336x224), JPEG q75 4:2:0",
        lambda: jpeg(_sized("motorcycle_left.png", 500, 333), quality=75), "photo")
    add("motorcycle_741x500.png", "photo 741x500 as shipped, RGB PNG",
        lambda: png(photo("motorcycle_left.png")), "photo")
    add("hubble_4000x3000_q90_420.jpg", "photo upscaled to 4000x3000 (+noise), JPEG q90 4:2:0",
        lambda: jpeg(_sized("hubble_deep_field.jpg", 4000, 3000, noise=8, seed=3)), "photo", "huge")

    data = lambda fn: (lambda: (skimage_data_dir() / fn).read_bytes())
    add("retina_orig.jpg", "photo 1411x1411 as shipped (foreign encoder, 4:2:0)",
        data("retina.jpg"), "photo", "orig")
    add("rocket_orig.jpg", "photo 640x427 as shipped (4:4:4, ICC profile, comment)",
        data("rocket.jpg"), "photo", "orig")
    add("hubble_orig.jpg", "photo 1000x872 as shipped (Adobe APP14, EXIF, XMP, ICC)",
        data("hubble_deep_field.jpg"), "photo", "orig")
    add("horse_orig.png", "RGBA PNG as shipped (alpha 110/217/255)", data("horse.png"), "orig")
    add("camera_orig.png", "gray 8-bit PNG as shipped", data("camera.png"), "orig")
    add("chelsea_orig.png", "RGB PNG as shipped (ICC, XMP)", data("chelsea.png"), "photo", "orig")

    # ---- geometry edge cases ----------------------------------------------------------------
    add("px_1x1.png", "1x1 RGB PNG", lambda: png(Image.new("RGB", (1, 1), (200, 40, 90))), "edge",
        "h1")
    add("px_1x1.jpg", "1x1 JPEG", lambda: jpeg(Image.new("RGB", (1, 1), (20, 140, 230))), "edge",
        "h1")
    add("thin_3x1000.png", "3 wide x 1000 tall", lambda: png(_rows("coffee.png", 3, 1000, .5)), "edge")
    add("thin_1000x3.png", "1000 wide x 3 tall (HF v4 channel-inference quirk, spec B.3)",
        lambda: png(_rows("coffee.png", 1000, 3, .5)), "edge", "h3")
    add("thin_300x1.png", "300 wide x 1 tall (HF v4 channel-inference quirk, spec B.3)",
        lambda: png(_rows("astronaut.png", 300, 1, .4)), "edge", "h1")
    add("thin_1x300.png", "1 wide x 300 tall", lambda: png(_rows("astronaut.png", 1, 300, .4)), "edge")
    add("strip_3000x20.jpg", "3000x20 JPEG (-> 33600x224 before crop)",
        lambda: jpeg(_rows("chelsea.png", 3000, 20, .6)), "edge")
    add("strip_3000x20.png", "3000x20 PNG", lambda: png(_rows("chelsea.png", 3000, 20, .3)), "edge")
    add("strip_20x3000.png", "20x3000 PNG (tall: Pillow>=12.2 would split passes)",
        lambda: png(_rows("rocket.jpg", 20, 3000, .5)), "edge")
    add("odd_17x9.png", "17x9 PNG (upscale, odd sizes)", lambda: png(_sized("astronaut.png", 17, 9)),
        "edge")
    add("odd_17x9.jpg", "17x9 JPEG 4:2:0 (partial MCUs)", lambda: jpeg(_sized("astronaut.png", 17, 9)),
        "edge")
    add("exact_224x224.jpg", "224x224 JPEG (clip-224 resize is a copy)",
        lambda: jpeg(_sized("chelsea.png", 224, 224)), "edge")
    add("exact_336x336.png", "336x336 PNG (clip-336 resize is a copy)",
        lambda: png(_sized("coffee.png", 336, 336)), "edge")
    add("exact_384x384.png", "384x384 PNG (siglip-384 resize is a copy)",
        lambda: png(_sized("astronaut.png", 384, 384)), "edge")
    add("up_100x100.png", "100x100 PNG (upscale)", lambda: png(_sized("rocket.jpg", 100, 100)), "edge")
    add("up_225x224.png", "225x224 PNG (one column of crop slack)",
        lambda: png(_sized("coffee.png", 225, 224)), "edge")
    add("noise_640x480.png", "uniform RGB noise (max ringing and clipping)", _noise, "edge")
    add("checker_333x251.png", "1-px 0/255 checkerboard, odd size (max overshoot)", _checker, "edge")

    # ---- modes and formats ------------------------------------------------------------------
    g640 = lambda: _sized("astronaut.png", 640, 480).convert("L")
    add("gray_640x480.jpg", "grayscale JPEG (1 component)", lambda: jpeg(g640()), "mode")
    add("gray_640x480_prog.jpg", "grayscale progressive JPEG", lambda: jpeg(g640(), progressive=True),
        "mode")
    add("gray_500x333.png", "8-bit grayscale PNG", lambda: png(_sized("coffee.png", 500, 333).convert("L")),
        "mode")
    add("gray_trns_500x333.png", "8-bit grayscale PNG with tRNS gray key",
        lambda: png(_sized("coffee.png", 500, 333).convert("L"), transparency=128), "mode")
    add("cmyk_640x480.jpg", "CMYK JPEG (Adobe, inverted)",
        lambda: jpeg(_sized("coffee.png", 640, 480).convert("CMYK")), "mode")
    add("palette_640x480.png", "8-bit palette PNG, no tRNS", lambda: _palette(False), "mode")
    add("palette_trns_640x480.png", "8-bit palette PNG with tRNS alphas", lambda: _palette(True), "mode")
    add("palette4_333x500.png", "4-bit palette PNG", _palette4, "mode")
    add("rgb_trns_500x333.png", "RGB PNG with tRNS colour key", _rgb_trns, "mode")
    add("rgba_640x480.png", "RGBA PNG with real transparency (hidden colour under alpha 0)",
        _rgba_with_holes, "mode")
    add("la_500x333.png", "gray+alpha (LA) PNG", _la, "mode")
    add("gray16_640x480.png", "16-bit gray PNG, values 0..1023 and 65535 (saturate at 255)",
        _gray16, "mode")
    add("rgb16_640x480.png", "16-bit RGB PNG (high byte taken)", _rgb16, "mode")
    add("rgba16_333x500.png", "16-bit RGBA PNG", _rgba16, "mode")
    add("gray_alpha16_500x333.png", "16-bit gray+alpha PNG (opens as RGBA)", _gray_alpha16, "mode")
    add("gray1_333x500.png", "1-bit gray PNG (mode 1)", lambda: _lowbit_gray(1), "mode")
    add("gray2_333x500.png", "2-bit gray PNG (x85)", lambda: _lowbit_gray(2), "mode")
    add("gray4_333x500.png", "4-bit gray PNG (x17)", lambda: _lowbit_gray(4), "mode")
    add("interlaced_640x480.png", "Adam7-interlaced RGB PNG",
        lambda: png_raw(np.asarray(_sized("chelsea.png", 640, 480)), 2, 8, interlace=True), "mode")
    add("interlaced_gray4_17x9.png", "Adam7-interlaced 4-bit gray PNG, tiny",
        lambda: png_raw(_gray(_sized("coffee.png", 17, 9)) >> 4, 0, 4, interlace=True), "mode")
    add("interlaced_3x2.png", "Adam7-interlaced 3x2 RGBA PNG (empty passes)",
        lambda: png_raw(np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * 10, 6, 8, interlace=True),
        "mode")
    add("webp_lossless_alpha_640x480.webp", "lossless WebP with alpha",
        lambda: webp(Image.open(io.BytesIO(_rgba_with_holes())), lossless=True), "mode")
    add("webp_lossy_alpha_500x333.webp", "lossy WebP with alpha",
        lambda: webp(Image.open(io.BytesIO(_la())).convert("RGBA"), quality=70), "mode")
    add("webp_lossless_333x500.webp", "lossless WebP, RGB", lambda: webp(r333(), lossless=True), "mode")

    # ---- EXIF orientation (non-square so that a transpose changes the geometry) -------------
    for o in range(1, 9):
        add(f"exif_o{o}_640x480.jpg", f"JPEG with EXIF orientation {o}",
            (lambda o=o: jpeg(_sized("motorcycle_left.png", 640, 480), exif=exif_orientation(o))),
            "exif")
    add("exif_o6_500x333.png", "PNG with eXIf orientation 6",
        lambda: png_raw(np.asarray(_sized("rocket.jpg", 500, 333)), 2, 8, exif=exif_orientation(6)),
        "exif")
    add("exif_o5_500x333.webp", "lossless WebP with EXIF orientation 5",
        lambda: webp(_sized("coffee.png", 500, 333), lossless=True, exif=exif_orientation(5)), "exif")
    return items


@functools.lru_cache(maxsize=None)
def _items() -> tuple[CorpusItem, ...]:
    items = _build_items()
    names = [i.name for i in items]
    assert len(names) == len(set(names)), "duplicate corpus names"
    return tuple(items)


def corpus(tag: str | None = None) -> list[CorpusItem]:
    return [i for i in _items() if tag is None or tag in i.tags]


def items(tag: str | None = None) -> list[tuple[str, bytes, str]]:
    """The corpus as (name, bytes, description) tuples (builds every item)."""
    return [i.astuple() for i in corpus(tag)]


def names(tag: str | None = None) -> list[str]:
    return [i.name for i in corpus(tag)]


def get(name: str) -> CorpusItem:
    for i in _items():
        if i.name == name:
            return i
    raise KeyError(name)


def build_all() -> list[CorpusItem]:
    """Materialises every item (fills the cache); returns them."""
    items = list(_items())
    for i in items:
        i.data
    return items


# ---- non-image / broken payloads for error tests ---------------------------------------------

def gif_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("P", (8, 8), 3).save(buf, "GIF")
    return buf.getvalue()


def unsupported_bytes() -> bytes:
    """A real image in a format the daemon does not decode (PPM)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "PPM")
    return buf.getvalue()


def pcx_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "PCX")
    return buf.getvalue()


def bmp_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "BMP")
    return buf.getvalue()


def png_header_only(w: int, h: int, color_type: int = 2, bit_depth: int = 8) -> bytes:
    """A PNG that claims w x h in IHDR, with a tiny (incomplete) IDAT: a decompression-bomb
    header. Must be rejected from the header alone."""
    out = b"\x89PNG\r\n\x1a\n"
    out += _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))
    out += _chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
    out += _chunk(b"IEND", b"")
    return out


def jpeg_with_size(w: int, h: int) -> bytes:
    """A real small JPEG whose SOF0 frame header is patched to claim w x h."""
    data = bytearray(jpeg(Image.new("RGB", (16, 16), (9, 99, 199))))
    i = 2
    while i < len(data):
        assert data[i] == 0xFF
        marker = data[i + 1]
        seglen = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            struct.pack_into(">HH", data, i + 5, h, w)
            return bytes(data)
        i += 2 + seglen
    raise AssertionError("no SOF marker")


def webp_solid(w: int, h: int) -> bytes:
    """A complete, valid lossless WebP of one colour (a few dozen bytes for any size)."""
    return webp(Image.new("RGB", (w, h), (10, 20, 30)), lossless=True, quality=0)


def png_solid_gray(w: int, h: int) -> bytes:
    """A complete, valid 8-bit gray PNG of zeros (about w*h/1000 bytes)."""
    row = b"\x00" * (w + 1)
    z = zlib.compressobj(9)
    data = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))


if __name__ == "__main__":  # python tests/images.py: build the cache and list the corpus
    for it in build_all():
        print(f"{it.name:38s} {it.mode:6s} {str(it.size):14s} {len(it.data):9d}  {it.description}")
