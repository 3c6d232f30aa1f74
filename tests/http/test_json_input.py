"""JSON input on /v1/preprocess: {"images": [...]} with data URIs, {"b64"}, OpenAI-style
image_url objects and {"url"} (fetching off by default). Every form must give exactly the tensor
the same bytes give as a multipart batch; every bad item is an error naming its index."""
import base64

import numpy as np
import pytest
import requests

import images
from conftest import assert_error, decode_npy, decode_tensor, describe_error

NAMES = ["astronaut_640x480_q90_420.jpg", "rocket_333x500.png", "coffee_1000x667.webp",
         "palette_640x480.png"]


def _b64(data: bytes, urlsafe=False) -> str:
    return (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()


def _post_json(daemon, body, **params):
    if isinstance(body, (bytes, str)):
        return daemon.session.post(daemon.url + "/v1/preprocess", data=body,
                                   headers={"Content-Type": "application/json"}, params=params,
                                   timeout=120)
    return daemon.session.post(daemon.url + "/v1/preprocess", json=body, params=params,
                               timeout=120)


def _forms(data: bytes, mime: str):
    return {
        "data_uri": f"data:{mime};base64,{_b64(data)}",
        "b64": {"b64": _b64(data)},
        "b64_urlsafe_unpadded": {"b64": _b64(data, urlsafe=True).rstrip("=")},
        "openai": {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{_b64(data)}",
                                                      "detail": "high"}},
        "url_data_uri": {"url": f"data:{mime};base64,{_b64(data)}"},
        "b64_wrapped": {"b64": "\n".join(_b64(data)[i:i + 76]
                                         for i in range(0, len(_b64(data)), 76))},
    }


MIME = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@pytest.fixture(scope="module")
def multipart_expected(daemon):
    r = daemon.post_batch([images.get(n).data for n in NAMES])
    assert r.status_code == 200, describe_error(r)
    return decode_npy(r.content)


@pytest.mark.parametrize("form", ["data_uri", "b64", "b64_urlsafe_unpadded", "openai",
                                  "url_data_uri", "b64_wrapped"])
def test_every_form_equals_multipart(daemon, multipart_expected, form):
    items = [_forms(images.get(n).data, MIME[n.rsplit(".", 1)[1]])[form] for n in NAMES]
    r = _post_json(daemon, {"images": items})
    assert r.status_code == 200, describe_error(r)
    assert r.headers["X-Tensor-Shape"].replace(" ", "") == f"{len(NAMES)},3,224,224"
    assert np.array_equal(decode_npy(r.content), multipart_expected)


def test_mixed_forms_and_options(daemon):
    datas = [images.get(n).data for n in NAMES]
    items = [_forms(d, MIME[n.rsplit(".", 1)[1]])[f]
             for d, n, f in zip(datas, NAMES, ["data_uri", "b64", "openai", "url_data_uri"])]
    r = _post_json(daemon, {"images": items}, profile="siglip-384", dtype="float16",
                   format="raw")
    assert r.status_code == 200, describe_error(r)
    mp = daemon.post_batch(datas, profile="siglip-384", dtype="float16", format="raw")
    assert mp.status_code == 200, describe_error(mp)
    assert np.array_equal(decode_tensor(r), decode_tensor(mp))
    assert r.headers["X-Profile"] == "siglip-384"


def test_charset_parameter_accepted(daemon):
    data = images.get(NAMES[0]).data
    r = daemon.session.post(daemon.url + "/v1/preprocess",
                            data=f'{{"images":[{{"b64":"{_b64(data)}"}}]}}',
                            headers={"Content-Type": "application/json; charset=utf-8"},
                            timeout=60)
    assert r.status_code == 200, describe_error(r)
    assert np.array_equal(decode_npy(r.content), daemon.tensor(data))


@pytest.mark.parametrize("bad,status,code", [
    ("not a data uri", 400, "bad_request"),
    ("data:image/png,rawbytes", 400, "bad_request"),
    ({"b64": "!!!notbase64"}, 400, "bad_request"),
    ({"b64": "QUJD="}, 400, "bad_request"),            # padding in the wrong place
    ({"b64": "QQ"}, 415, "unsupported_format"),         # valid base64, not an image
    ({"b64": ""}, 400, "bad_request"),
    ({"b64": 12}, 400, "bad_request"),
    ({"bytes": "QUJD"}, 400, "bad_request"),            # unknown key
    ({"b64": "QUJD", "url": "data:x;base64,QUJD"}, 400, "bad_request"),  # two forms
    ({"type": "text", "image_url": {"url": "x"}}, 400, "bad_request"),
    ({"type": "image_url", "image_url": {"uri": "x"}}, 400, "bad_request"),
    ({"url": "ftp://example.com/a.png"}, 400, "bad_request"),
    ({"url": "https://example.com/a.png"}, 403, "fetch_disabled"),
    ({"hash": "zz"}, 400, "bad_request"),
    ({"hash": "0" * 32}, 404, "cache_miss"),            # cache off here
    (42, 400, "bad_request"),
    (None, 400, "bad_request"),
])
def test_bad_item_names_its_index(daemon, bad, status, code):
    good = {"b64": _b64(images.get(NAMES[1]).data)}
    r = _post_json(daemon, {"images": [good, good, bad, good]})
    assert_error(r, status, code, index=2)


@pytest.mark.parametrize("body,code", [
    (b"{", "bad_request"),
    (b"[]", "bad_request"),
    (b'{"images": []}', "bad_request"),
    (b'{"images": {}}', "bad_request"),
    (b'{"imgs": ["data:image/png;base64,QUJD"]}', "bad_request"),
    (b'{"images": ["data:image/png;base64,QUJD"], "profile": "clip-224"}', "bad_request"),
    (b"", "bad_request"),
])
def test_bad_body_is_a_request_error(daemon, body, code):
    assert_error(_post_json(daemon, body), 400, code, index=None)


def test_too_many_images(daemon_factory):
    d = daemon_factory({"max_images_per_request": 2})
    good = {"b64": _b64(images.get(NAMES[1]).data)}
    assert_error(_post_json(d, {"images": [good] * 3}), 413, "too_many_images", index=None)
    r = _post_json(d, {"images": [good] * 2})
    assert r.status_code == 200, describe_error(r)


def test_base64_bound_and_body_limit(daemon_factory):
    data = images.get(NAMES[0]).data
    d = daemon_factory({"max_body_bytes": len(data)})
    # the body limit applies to the JSON text, which is 4/3 of the bytes: refused before parsing
    assert_error(_post_json(d, {"images": [{"b64": _b64(data)}]}), 413, "body_too_large",
                 index=None)


def test_decoded_image_errors_keep_the_index(daemon):
    png = images.get(NAMES[1]).data
    r = _post_json(daemon, {"images": [{"b64": _b64(png)}, {"b64": _b64(png[:200])}]})
    assert_error(r, 400, "invalid_image", index=1)
    # the daemon is fine afterwards
    r = _post_json(daemon, {"images": [{"b64": _b64(png)}]})
    assert r.status_code == 200, describe_error(r)


def test_large_json_bodies_are_parsed_off_the_http_thread(daemon_factory):
    """From 256 KiB on, the body is parsed on an offload thread with the request suspended
    (the HTTP thread keeps serving); the answer is the multipart one, and small bodies are
    parsed inline."""
    d = daemon_factory({"log_level": "debug", "http_threads": 1})
    big_img = images.get("rocket_333x500.png").data
    n = max(2, (300 << 10) // len(big_img) + 1)  # base64 of n copies: over 256 KiB
    want = decode_npy(d.post_batch([big_img] * n).content)
    r = _post_json(d, {"images": [{"b64": _b64(big_img)}] * n})
    assert r.status_code == 200, describe_error(r)
    assert np.array_equal(decode_npy(r.content), want)
    small = images.get("odd_17x9.jpg").data
    r = _post_json(d, {"images": [{"b64": _b64(small)}]})
    assert r.status_code == 200, describe_error(r)
    offloaded = d.wait_log("json body parsed off the HTTP thread")
    assert len(offloaded) == 1, offloaded
    assert offloaded[0]["bytes"] > 256 << 10
    # a body that fails to parse off the thread is answered like one parsed inline
    r = _post_json(d, '{"images": [' + '{"b64": "AAAA"},' * 20000)  # cut short
    assert r.status_code == 400 and r.json()["error"]["index"] is None, describe_error(r)
    assert len(d.wait_log("json body parsed off the HTTP thread", count=2)) == 2
