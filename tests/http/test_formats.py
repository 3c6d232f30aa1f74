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
    return {
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
