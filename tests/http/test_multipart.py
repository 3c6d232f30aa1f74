"""multipart/form-data batches: every part is one image; order is kept; one bad image fails
the whole batch with its index."""
import struct
import zlib

import numpy as np
import pytest

import images
import reference as ref
from conftest import assert_error, decode_npy, decode_tensor, describe_error, multipart_body

BATCH = ["astronaut_640x480_q90_420.jpg", "rocket_333x500.png", "coffee_1000x667.webp",
         "gray_640x480.jpg", "palette_640x480.png"]


def _exp(name, profile="clip-224"):
    return ref.expected(profile, images.get(name).data)[0]


def _data(names):
    return [images.get(n).data for n in names]


@pytest.mark.parametrize("profile", ["clip-224", "siglip-384"])
def test_batch_order_and_content(daemon, profile):
    r = daemon.post_batch(_data(BATCH), profile=profile)
    assert r.status_code == 200, describe_error(r)
    assert r.headers.get("X-Profile") == profile
    a = decode_npy(r.content)
    assert a.shape == (len(BATCH), 3) + ref.PROFILES[profile].out_hw
    for i, n in enumerate(BATCH):
        assert np.array_equal(a[i:i + 1], _exp(n, profile)), f"batch slot {i} ({n}) is wrong"


def test_batch_equals_single_requests(daemon):
    names = BATCH[::-1] + BATCH[:2]
    r = daemon.post_batch(_data(names), dtype="float16", format="raw")
    assert r.status_code == 200, describe_error(r)
    assert r.headers["X-Tensor-Shape"].replace(" ", "") == f"{len(names)},3,224,224"
    a = decode_tensor(r)
    for i, n in enumerate(names):
        single = daemon.tensor(images.get(n).data, what=n, dtype="float16")
        assert np.array_equal(a[i:i + 1], single), f"slot {i} ({n}) differs from its single result"


def test_single_part_batch_equals_raw_body(daemon):
    n = "chelsea_1920x1080_prog.jpg"
    r = daemon.post_batch(_data([n]))
    assert r.status_code == 200, describe_error(r)
    assert np.array_equal(decode_npy(r.content), daemon.tensor(images.get(n).data, what=n))


@pytest.mark.parametrize("variant", ["quoted_boundary", "preamble_epilogue", "no_filename",
                                     "image_content_types", "no_part_content_type",
                                     "odd_boundary_chars", "lf_only_epilogue"])
def test_multipart_syntax_variants(daemon, variant):
    names = ["rocket_333x500_q90_420.jpg", "gray_500x333.png"]
    parts = _data(names)
    kw = {}
    ct_override = None
    if variant == "preamble_epilogue":
        kw = dict(preamble=b"This is the preamble.\r\n", epilogue=b"\r\nand an epilogue\r\n")
    elif variant == "no_filename":
        kw = dict(part_headers=[[b'Content-Disposition: form-data; name="a"']] * 2)
    elif variant == "image_content_types":
        kw = dict(part_headers=[[b'Content-Disposition: form-data; name="images"; filename="x.jpg"',
                                 b"Content-Type: image/jpeg"],
                                [b'Content-Disposition: form-data; name="images"; filename="y.png"',
                                 b"Content-Type: image/png"]])
    elif variant == "no_part_content_type":
        kw = dict(part_headers=[[b'Content-Disposition: form-data; name="f"; filename="x"']] * 2)
    elif variant == "odd_boundary_chars":
        kw = dict(boundary="a'()+_,-./:=?b")
    elif variant == "lf_only_epilogue":
        kw = dict(epilogue=b"\n")
    body, ct = multipart_body(parts, **kw)
    if variant == "quoted_boundary":
        boundary = ct.split("boundary=", 1)[1]
        ct_override = f'multipart/form-data; charset=utf-8; boundary="{boundary}"'
    if variant == "odd_boundary_chars":
        ct_override = "multipart/form-data; boundary=\"a'()+_,-./:=?b\""
    r = daemon.post(body, content_type=ct_override or ct)
    assert r.status_code == 200, f"{variant}: {describe_error(r)}"
    a = decode_npy(r.content)
    assert a.shape == (2, 3, 224, 224)
    for i, n in enumerate(names):
        assert np.array_equal(a[i:i + 1], _exp(n)), f"{variant}: slot {i} ({n})"


def _png_with_text(payload: bytes) -> bytes:
    """rocket_333x500.png with a tEXt chunk carrying payload inserted after IHDR."""
    d = images.get("rocket_333x500.png").data
    ihdr_end = 8 + 8 + 13 + 4
    data = b"Comment\x00" + payload
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
    return d[:ihdr_end] + chunk + d[ihdr_end:]


def test_part_data_containing_boundary_like_bytes(daemon):
    boundary = "XyZboundary42"
    tricky = _png_with_text(b"\r\n--XyZboundary4\r\n--XyZ\r\n\r\n--" + b"-" * 40)
    r = daemon.post_batch([tricky, images.get("rocket_333x500.png").data], boundary=boundary)
    assert r.status_code == 200, describe_error(r)
    a = decode_npy(r.content)
    assert a.shape[0] == 2
    want = ref.expected("clip-224", tricky)[0]
    assert np.array_equal(a[0:1], want) and np.array_equal(a[1:2], want)


def test_bad_image_fails_batch_with_its_index(daemon):
    good = images.get("astronaut_640x480_q90_420.jpg").data
    bad = images.get("rocket_333x500.png").data[:5000]
    assert_error(daemon.post_batch([good, bad, good]), 400, "invalid_image", index=1)
    assert_error(daemon.post_batch([bad, good]), 400, "invalid_image", index=0)


def test_unsupported_part_fails_batch_with_its_index(daemon):
    good = images.get("rocket_333x500_q90_420.jpg").data
    assert_error(daemon.post_batch([good, good, images.unsupported_bytes()]), 415, "unsupported_format",
                 index=2)
    assert_error(daemon.post_batch([good, b"just some text"]), 415, "unsupported_format", index=1)


def test_first_bad_image_is_reported(daemon):
    good = images.get("rocket_333x500_q90_420.jpg").data
    trunc = images.get("astronaut_640x480_q90_420.jpg").data[:3000]
    trunc2 = images.get("rocket_333x500.png").data[:4000]
    for _ in range(3):  # decoding may run in parallel; the lowest index must win every time
        assert_error(daemon.post_batch([good, good, images.unsupported_bytes(), b"text", good]), 415,
                     "unsupported_format", index=2)
        assert_error(daemon.post_batch([good, good, good, trunc, trunc2, good]), 400,
                     "invalid_image", index=3)
        assert_error(daemon.post_batch([good, good, images.unsupported_bytes(), trunc, good]), 415,
                     "unsupported_format", index=2)


def test_header_errors_are_reported_before_any_decoding(daemon):
    """Documented order (docs/api.md): every part's header (format, size, pixel limit) is
    checked before anything is decoded, so a batch is refused at once, without decode work,
    naming the first part that fails those checks — even when an earlier part would only
    fail later, while decoding. Among parts that fail while decoding, the lowest index wins."""
    good = images.get("rocket_333x500_q90_420.jpg").data
    trunc = images.get("astronaut_640x480_q90_420.jpg").data[:3000]
    assert_error(daemon.post_batch([good, trunc, images.unsupported_bytes()]), 415, "unsupported_format",
                 index=2)
    assert_error(daemon.post_batch([good, trunc, good, trunc]), 400, "invalid_image", index=1)


def test_empty_part(daemon):
    good = images.get("rocket_333x500_q90_420.jpg").data
    r = daemon.post_batch([good, b""])
    assert r.status_code in (400, 415), describe_error(r)
    assert r.json()["error"]["index"] == 1, r.text


def test_too_many_images(daemon_factory):
    d = daemon_factory({"max_images_per_request": 3})
    good = images.get("rocket_333x500_q90_420.jpg").data
    r = d.post_batch([good] * 3)
    assert r.status_code == 200, describe_error(r)
    assert decode_npy(r.content).shape == (3, 3, 224, 224)
    assert_error(d.post_batch([good] * 4), 413, "too_many_images", index=None)
    assert_error(d.post_batch([good] * 40), 413, "too_many_images", index=None)


def test_image_too_large_in_batch_names_index(daemon_factory):
    d = daemon_factory({"max_pixels": 400 * 400})
    small = images.get("up_100x100.png").data
    big = images.get("astronaut_640x480_q90_420.jpg").data
    assert_error(d.post_batch([small, small, big]), 413, "image_too_large", index=2)
    assert_error(d.post_batch([small, images.png_header_only(60000, 60000)]), 413,
                 "image_too_large", index=1)


@pytest.mark.parametrize("case", ["no_boundary_param", "boundary_not_in_body", "no_closing_delimiter",
                                  "zero_parts", "part_without_header_terminator", "garbage"])
def test_malformed_multipart(daemon, case):
    good = images.get("rocket_333x500_q90_420.jpg").data
    body, ct = multipart_body([good, good], boundary="BOUNDARY1234")
    if case == "no_boundary_param":
        ct = "multipart/form-data"
    elif case == "boundary_not_in_body":
        ct = "multipart/form-data; boundary=SOMETHINGELSE"
    elif case == "no_closing_delimiter":
        body = body[:body.rfind(b"--BOUNDARY1234--")]
    elif case == "zero_parts":
        body = b"--BOUNDARY1234--\r\n"
    elif case == "part_without_header_terminator":
        body = (b"--BOUNDARY1234\r\nContent-Disposition: form-data; name=\"a\"\r\n"
                + b"x" * 100 + b"\r\n--BOUNDARY1234--\r\n")
    elif case == "garbage":
        body = b"this is not multipart at all"
    assert_error(daemon.post(body, content_type=ct), 400, "bad_request", index=None)
    assert daemon.alive()
