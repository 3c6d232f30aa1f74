"""Input formats beyond JPEG/PNG/WebP, with Pillow (the .venv's, as the references use it) as
the reference: the daemon's tensor for a file must equal its tensor for the PNG of
Image.open(file).convert("RGB"), i.e. decoding is exactly Pillow's, and one case per format is
also checked against the transformers reference end to end."""
import io
import struct

import numpy as np
import pytest
from PIL import Image

import images
import reference as ref
from conftest import assert_error, describe_error

PHOTO = "astronaut_640x480_q90_420.jpg"


def _photo(size=None, name=PHOTO):
    im = Image.open(io.BytesIO(images.get(name).data)).convert("RGB")
    return im.resize(size) if size else im


def _save(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def _pillow_png(data: bytes) -> bytes:
    """What Pillow decodes, as an RGB PNG (exact through the daemon's PNG path)."""
    im = Image.open(io.BytesIO(data))
    im.load()
    return _save(im.convert("RGB"), "PNG")


def _same_as_pillow(daemon, data, **kw):
    got = daemon.tensor(data, **kw)
    want = daemon.tensor(_pillow_png(data), **kw)
    assert got.shape == want.shape
    assert np.array_equal(got, want), f"max diff {np.abs(got - want).max()}"


# ---- GIF ----------------------------------------------------------------------------------

def _gif_blocks(data: bytes):
    """Offset of the logical screen descriptor's size and of the first image descriptor."""
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while data[pos] == 0x21:  # extensions: label, then sub-blocks
        pos += 2
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    assert data[pos] == 0x2C, "no image descriptor"
    return pos


def _gif_offset_frame(data: bytes, screen, left, top) -> bytes:
    b = bytearray(data)
    b[6:10] = struct.pack("<HH", *screen)
    d = _gif_blocks(data)
    b[d + 1:d + 5] = struct.pack("<HH", left, top)
    return bytes(b)


def _gifs():
    photo = _photo((320, 240))
    pal = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    small = photo.resize((61, 47)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    frames = [photo.rotate(a).convert("P", palette=Image.Palette.ADAPTIVE) for a in (0, 30, 60)]
    base = _save(small, "GIF", interlace=False)
    trns = _save(small, "GIF", interlace=False, transparency=5)
    tiny = Image.new("P", (4, 3))
    tiny.putpalette([v for c in range(16) for v in (c * 10, c * 10 + 1, c * 10 + 2)])
    tiny.putdata([0, 1, 5, 15] * 3)
    g = bytearray(_save(tiny, "GIF", optimize=False))
    n = 3 << ((g[10] & 7) + 1)  # cut the 16-entry global palette to 2 entries
    short = bytes(g[:10] + bytes([g[10] & ~7]) + g[11:13] + g[13:19] + g[13 + n:])
    grey = bytearray(short)
    grey[13:19] = bytes([0, 0, 0, 1, 1, 1])  # an identity grey palette: Pillow's mode "L"
    return {
        "short_palette": short,
        "grey_identity_palette": bytes(grey),
        "palette": _save(pal, "GIF", interlace=False),
        "interlaced": _save(pal, "GIF", interlace=True),
        "gray": _save(photo.convert("L"), "GIF"),
        "bilevel": _save(photo.convert("1"), "GIF"),
        "transparency": _save(pal, "GIF", transparency=7),
        "animated_first_frame": _save(frames[0], "GIF", save_all=True,
                                      append_images=frames[1:], duration=50, loop=0),
        "frame_inside_screen": _gif_offset_frame(base, (80, 60), 10, 7),
        "frame_inside_screen_trns": _gif_offset_frame(trns, (80, 60), 10, 7),
        "frame_past_screen": _gif_offset_frame(base, (61, 47), 5, 3),
    }


GIFS = _gifs()


@pytest.mark.parametrize("name", sorted(GIFS))
def test_gif_equals_pillow(daemon, name):
    _same_as_pillow(daemon, GIFS[name])


def test_gif_sizes_are_pillows(daemon):
    for name in ("frame_inside_screen", "frame_past_screen"):
        im = Image.open(io.BytesIO(GIFS[name]))
        assert im.size == ((80, 60) if name == "frame_inside_screen" else (66, 50))


def test_gif_against_transformers(daemon):
    data = GIFS["palette"]
    assert np.array_equal(daemon.tensor(data), ref.expected("clip-224", data)[0])


def test_gif_errors(daemon):
    data = GIFS["palette"]
    with pytest.raises(OSError):
        Image.open(io.BytesIO(data[:len(data) // 2])).load()
    assert_error(daemon.post(data[:len(data) // 2]), 400, "invalid_image", index=0)
    assert_error(daemon.post(b"GIF89a" + data[6:13] + b"\x3b"), 400, "invalid_image")
    assert_error(daemon.post(b"GIF8"), 400, "invalid_image")


# ---- BMP ----------------------------------------------------------------------------------

def _bmp(w, h, bits, rows, palette=None, header=40, top_down=False, compression=0,
         masks=None, colors=None, offset_at_palette=False):
    """A BMP from packed rows (top row first, each unpadded); written by hand so that every
    variant Pillow reads can be made."""
    stride = ((w * bits + 31) >> 3) & ~3
    pix = b"".join(r.ljust(stride, b"\0") for r in (rows if top_down else rows[::-1]))
    entry = 3 if header == 12 else 4
    pal = b"".join(bytes((b_, g, r)) + (b"\0" if entry == 4 else b"") for r, g, b_ in
                   (palette or []))
    if header == 12:
        info = struct.pack("<IHHHH", 12, w, h, 1, bits)
        extra = b""
    else:
        hh = (2 ** 32 - h) if top_down else h
        info = struct.pack("<IiIHHIIiiII", header, w, hh, 1, bits, compression, len(pix),
                           2835, 2835, colors if colors is not None else len(palette or []), 0)
        extra = b""
        if compression == 3 and header == 40:
            extra = struct.pack("<III", *masks[:3])
        elif header > 40:
            m = (list(masks) if masks else [0, 0, 0, 0]) + [0] * 4
            info += struct.pack("<IIII", *m[:4]) + bytes(header - 56)
            info = info[:header]
    off = 14 + len(info) + len(extra) + len(pal)
    file_off = 14 + len(info) if offset_at_palette else off
    return b"BM" + struct.pack("<IHHI", off + len(pix), 0, 0, file_off) + info + extra + pal + pix


def _bmps():
    rng = np.random.default_rng(7)
    w, h = 37, 23
    rgb = np.array(_photo((w, h)))
    idx = rng.integers(0, 16, (h, w), dtype=np.uint8)
    pal16 = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(16)]
    pal256 = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(256)]
    idx8 = rng.integers(0, 256, (h, w), dtype=np.uint8)

    def packbits(a, bits):
        out = []
        for row in a:
            v = 0
            n = 0
            buf = bytearray()
            for p in row:
                v = (v << bits) | int(p)
                n += bits
                if n == 8:
                    buf.append(v)
                    v = n = 0
            if n:
                buf.append(v << (8 - n))
            out.append(bytes(buf))
        return out

    def rows16(f):
        return [b"".join(struct.pack("<H", f(*px)) for px in row) for row in rgb.astype(int)]

    bgr = [row[:, ::-1].tobytes() for row in rgb]
    bgrx = [np.concatenate([row[:, ::-1], rng.integers(0, 256, (w, 1), dtype=np.uint8)],
                           axis=1).tobytes() for row in rgb]
    xbgr = [np.concatenate([rng.integers(0, 256, (w, 1), dtype=np.uint8), row[:, ::-1]],
                           axis=1).tobytes() for row in rgb]
    rgba = [np.concatenate([row, rng.integers(0, 256, (w, 1), dtype=np.uint8)],
                           axis=1).tobytes() for row in rgb]
    return {
        "pillow_rgb": _save(_photo((97, 61)), "BMP"),
        "pillow_p": _save(_photo((97, 61)).convert("P", palette=Image.Palette.ADAPTIVE), "BMP"),
        "pillow_l": _save(_photo((97, 61)).convert("L"), "BMP"),
        "pillow_1": _save(_photo((97, 61)).convert("1"), "BMP"),
        "rgb24_top_down": _bmp(w, h, 24, bgr, top_down=True),
        "rgb24_v5": _bmp(w, h, 24, bgr, header=124),
        "os2_rgb24": _bmp(w, h, 24, bgr, header=12),
        "os2_pal8": _bmp(w, h, 8, [r.tobytes() for r in idx8], pal256, header=12),
        "pal4": _bmp(w, h, 4, packbits(idx, 4), pal16),
        "pal1_colored": _bmp(w, h, 1, packbits(idx & 1, 1), [(200, 10, 10), (10, 10, 200)]),
        "pal8_short_palette": _bmp(w, h, 8, [r.tobytes() for r in idx8], pal16),
        "pal8_offset_at_palette": _bmp(w, h, 8, [r.tobytes() for r in idx8], pal256,
                                       offset_at_palette=True),
        "rgb555": _bmp(w, h, 16, rows16(lambda r, g, b: (r >> 3) << 10 | (g >> 3) << 5 | b >> 3)),
        "rgb565_bitfields": _bmp(w, h, 16, rows16(lambda r, g, b: (r >> 3) << 11 | (g >> 2) << 5
                                                  | b >> 3), compression=3,
                                 masks=(0xF800, 0x7E0, 0x1F)),
        "bgrx32": _bmp(w, h, 32, bgrx),
        "bgrx32_v4": _bmp(w, h, 32, bgrx, header=108),
        "xbgr32_bitfields": _bmp(w, h, 32, xbgr, compression=3, header=56,
                                 masks=(0xFF000000, 0xFF0000, 0xFF00, 0)),
        "rgba32_bitfields_v5": _bmp(w, h, 32, rgba, compression=3, header=124,
                                    masks=(0xFF, 0xFF00, 0xFF0000, 0xFF000000)),
    }


BMPS = _bmps()


@pytest.mark.parametrize("name", sorted(BMPS))
def test_bmp_equals_pillow(daemon, name):
    Image.open(io.BytesIO(BMPS[name])).load()  # Pillow reads it
    _same_as_pillow(daemon, BMPS[name])


def test_bmp_against_transformers(daemon):
    data = BMPS["pillow_rgb"]
    assert np.array_equal(daemon.tensor(data), ref.expected("clip-224", data)[0])


def test_bmp_refused_variants(daemon):
    w, h = 8, 4
    rle = _bmp(w, h, 8, [bytes(w)] * h, [(i, 0, 0) for i in range(256)], compression=1)
    odd_masks = _bmp(w, h, 32, [bytes(4 * w)] * h, compression=3, header=56,
                     masks=(0xFF00, 0xFF, 0xFF0000, 0))
    grey4 = _bmp(w, h, 4, [bytes(w // 2)] * h, [(i, i, i) for i in range(16)])
    for data in (rle, odd_masks, grey4):
        assert_error(daemon.post(data), 415, "unsupported_format", index=0)
    good = BMPS["bgrx32"]
    with pytest.raises(OSError):
        Image.open(io.BytesIO(good[:-50])).load()
    assert_error(daemon.post(good[:-50]), 400, "invalid_image", index=0)


# ---- TIFF ---------------------------------------------------------------------------------

def _tiffs():
    photo = _photo((97, 61))
    rgba = photo.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
    pal = photo.convert("P", palette=Image.Palette.ADAPTIVE)
    out = {
        "rgb_raw": _save(photo, "TIFF"),
        "rgb_lzw": _save(photo, "TIFF", compression="tiff_lzw"),
        "rgb_deflate": _save(photo, "TIFF", compression="tiff_adobe_deflate"),
        "rgb_packbits": _save(photo, "TIFF", compression="packbits"),
        "rgba_lzw": _save(rgba, "TIFF", compression="tiff_lzw"),
        "gray": _save(photo.convert("L"), "TIFF"),
        "gray_deflate": _save(photo.convert("L"), "TIFF", compression="tiff_deflate"),
        "bilevel": _save(photo.convert("1"), "TIFF"),
        "bilevel_g4": _save(photo.convert("1"), "TIFF", compression="group4"),
        "palette": _save(pal, "TIFF"),
        "la": _save(photo.convert("LA"), "TIFF"),
        "multipage_first": _save(photo, "TIFF", save_all=True,
                                 append_images=[photo.rotate(90), photo.convert("L")]),
    }
    return out


TIFFS = _tiffs()


@pytest.mark.parametrize("name", sorted(TIFFS))
def test_tiff_equals_pillow(daemon, name):
    _same_as_pillow(daemon, TIFFS[name])


def test_tiff_against_transformers(daemon):
    data = TIFFS["rgb_lzw"]
    assert np.array_equal(daemon.tensor(data), ref.expected("clip-224", data)[0])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_orientation_tag(daemon, orientation):
    """Pillow transposes a TIFF by its Orientation tag on load (exif option or not)."""
    data = _save(_photo((97, 61)), "TIFF", tiffinfo={274: orientation})
    want = ref.expected("clip-224", data)[0]
    assert np.array_equal(daemon.tensor(data), want)
    assert np.array_equal(daemon.tensor(data, exif=1), want)
    _same_as_pillow(daemon, data)


def test_tiff_refused_variants(daemon):
    photo = _photo((64, 48))
    for data in (_save(photo, "TIFF", compression="jpeg"), _save(photo.convert("CMYK"), "TIFF"),
                 _save(photo.convert("I;16"), "TIFF"), _save(photo.convert("F"), "TIFF")):
        assert_error(daemon.post(data), 415, "unsupported_format", index=0)
    good = TIFFS["rgb_raw"]
    assert_error(daemon.post(good[:len(good) // 2]), 400, "invalid_image", index=0)


# ---- every reference (#12's reference parameter) -------------------------------------------

def _same_mode_png(data: bytes) -> bytes:
    """The file as Pillow opens it, saved as a PNG in the same mode (P with its palette and
    transparency, 1, L, LA, RGB, RGBA): the daemon's PNG path is checked against each
    reference elsewhere, so equal tensors mean the new decoder hands every reference what
    Pillow would (alpha over white, open_clip's resize in the image's own mode)."""
    im = Image.open(io.BytesIO(data))
    im.load()
    kw = {}
    if "transparency" in im.info:
        kw["transparency"] = im.info["transparency"]
    return _save(im, "PNG", **kw)


def _rgba_samples():
    photo = _photo((61, 47))
    rgba = photo.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
    w, h = photo.size
    arr = np.array(rgba)
    rows = [np.ascontiguousarray(r[:, [2, 1, 0, 3]]).tobytes() for r in arr]  # B, G, R, A
    return {
        "gif_transparency": GIFS["transparency"],
        "gif_palette": GIFS["palette"],
        "gif_gray": GIFS["gray"],
        "bmp_bgra_bitfields": _bmp(w, h, 32, rows, compression=3, header=124,
                                   masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000)),
        "bmp_pal8": BMPS["pillow_p"],
        "bmp_1bit": BMPS["pillow_1"],
        "tiff_rgba": _save(rgba, "TIFF", compression="tiff_lzw"),
        "tiff_la": TIFFS["la"],
        "tiff_palette": TIFFS["palette"],
        "tiff_bilevel": TIFFS["bilevel"],
    }


RGBA_SAMPLES = _rgba_samples()


@pytest.mark.parametrize("reference", ["transformers4", "transformers5", "transformers5-pil",
                                       "open_clip"])
@pytest.mark.parametrize("name", sorted(RGBA_SAMPLES))
def test_every_reference_sees_pillows_image(daemon, name, reference):
    data = RGBA_SAMPLES[name]
    kw = {"params": {"reference": reference}}
    got = daemon.tensor(data, **kw)
    want = daemon.tensor(_same_mode_png(data), **kw)
    assert np.array_equal(got, want), f"max diff {np.abs(got - want).max()}"


@pytest.mark.parametrize("name", ["gif_transparency", "bmp_bgra_bitfields", "tiff_rgba",
                                  "tiff_la"])
def test_alpha_matters_per_reference(daemon, name):
    """The transparency is really seen: compositing over white (transformers 5) differs from
    dropping alpha (transformers 4), and both follow Pillow (test above)."""
    data = RGBA_SAMPLES[name]
    t4 = daemon.tensor(data, params={"reference": "transformers4"})
    t5 = daemon.tensor(data, params={"reference": "transformers5"})
    assert not np.array_equal(t4, t5)


# ---- AVIF ---------------------------------------------------------------------------------

def _avifs():
    photo = _photo((320, 240))
    rgba = photo.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
    return {
        "q75_420": _save(photo, "AVIF", quality=75),
        "q90_444": _save(photo, "AVIF", quality=90, subsampling="4:4:4"),
        "q60_422": _save(photo, "AVIF", quality=60, subsampling="4:2:2"),
        "gray": _save(photo.convert("L"), "AVIF"),
        "rgba": _save(rgba, "AVIF", quality=80),
        "odd_size": _save(photo.resize((333, 251)), "AVIF"),
    }


AVIFS = _avifs()


@pytest.mark.parametrize("name", sorted(AVIFS))
def test_avif_equals_pillow(daemon, name):
    """Debian's libavif 0.11 (dav1d, libyuv) against the wheel's libavif 1.3: equal here."""
    _same_as_pillow(daemon, AVIFS[name])


@pytest.mark.parametrize("reference", ["transformers4", "transformers5", "open_clip"])
def test_avif_alpha_every_reference(daemon, reference):
    data = AVIFS["rgba"]
    kw = {"params": {"reference": reference}}
    assert np.array_equal(daemon.tensor(data, **kw), daemon.tensor(_same_mode_png(data), **kw))


def test_avif_against_transformers(daemon):
    data = AVIFS["q75_420"]
    assert np.array_equal(daemon.tensor(data), ref.expected("clip-224", data)[0])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_avif_orientation(daemon, orientation):
    """Pillow stores an EXIF orientation as irot/imir boxes and reports it back from them."""
    exif = Image.Exif()
    exif[274] = orientation
    data = _save(_photo((97, 61)), "AVIF", exif=exif.tobytes())
    assert np.array_equal(daemon.tensor(data, exif=1), ref.expected("clip-224", data, exif=True)[0])
    assert np.array_equal(daemon.tensor(data), ref.expected("clip-224", data)[0])


def test_avif_errors(daemon):
    data = AVIFS["q75_420"]
    assert_error(daemon.post(data[:len(data) // 2]), 400, "invalid_image", index=0)


def test_heic_errors(daemon):
    """HEIC is decoded (tests/reference/test_heic.py compares it with pillow-heif, which this
    venv lacks); a HEIF container without a usable image is a clear 400 or 415, not a guess."""
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    assert_error(daemon.post(heic), 400, "invalid_image", index=0)
    # a HEIF whose primary item is not HEVC (here: no item at all) is refused, not guessed
    hdlr = b"\x00\x00\x00\x21hdlr" + bytes(8) + b"pict" + bytes(13)
    pitm = b"\x00\x00\x00\x0epitm" + bytes(4) + b"\x00\x01"
    iinf = b"\x00\x00\x00\x0eiinf" + bytes(6)
    iloc = b"\x00\x00\x00\x10iloc" + bytes(8)
    ipco, ipma = b"\x00\x00\x00\x08ipco", b"\x00\x00\x00\x10ipma" + bytes(8)
    iprp = struct.pack(">I", 8 + len(ipco) + len(ipma)) + b"iprp" + ipco + ipma
    body = bytes(4) + hdlr + pitm + iinf + iloc + iprp
    meta = struct.pack(">I", 8 + len(body)) + b"meta" + body
    mif1 = b"\x00\x00\x00\x10ftypmif1\x00\x00\x00\x00" + meta
    err = assert_error(daemon.post(mif1), 415, "unsupported_format", index=0)
    assert "HEVC" in err["message"]
