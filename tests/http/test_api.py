"""POST /v1/preprocess, GET /v1/profiles: formats, dtypes, parameters, concurrency.

Content is always checked against the references of tests/reference.py (the parity suite
covers the whole corpus; here a few images suffice)."""
import json
import threading

import numpy as np
import pytest

import images
import reference as ref
from conftest import decode_npy, decode_tensor, describe_error

PHOTO = "astronaut_640x480_q90_420.jpg"
PROFILE_NAMES = list(ref.PROFILES)


def _exp(profile="clip-224", name=PHOTO, exif=False):
    return ref.expected(profile, images.get(name).data, exif=exif)[0]


def test_profiles_listing(daemon):
    r = daemon.get("/v1/profiles")
    assert r.status_code == 200, describe_error(r)
    assert r.headers.get("Content-Type", "").startswith("application/json")
    j = r.json()
    assert j["default"] == "clip-224"
    listed = {p["name"]: p for p in j["profiles"]}
    assert set(ref.PROFILES) <= set(listed), sorted(listed)
    for name, p in ref.PROFILES.items():
        got = listed[name]
        assert (got["output"]["height"], got["output"]["width"]) == p.out_hw, (name, got)
        # compared as float32: that is the precision the normalisation table uses (spec B.8)
        assert np.array_equal(np.float32(got["mean"]), np.float32(p.mean)), (name, got["mean"])
        assert np.array_equal(np.float32(got["std"]), np.float32(p.std)), (name, got["std"])


def test_default_request_is_npy_float32_clip224(daemon):
    r = daemon.post(images.get(PHOTO).data)
    assert r.status_code == 200, describe_error(r)
    assert r.headers["Content-Type"].split(";")[0] == "application/x-npy"
    assert r.headers.get("X-Profile") == "clip-224"
    a = decode_npy(r.content)
    assert a.dtype == np.dtype("<f4") and a.shape == (1, 3, 224, 224)
    assert np.array_equal(a, _exp())


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_profile_parameter(daemon, profile):
    r = daemon.post(images.get(PHOTO).data, profile=profile)
    assert r.status_code == 200, describe_error(r)
    assert r.headers.get("X-Profile") == profile
    a = decode_npy(r.content)
    assert a.shape == (1, 3) + ref.PROFILES[profile].out_hw
    assert np.array_equal(a, _exp(profile)), f"{profile}: max |d| {np.abs(a - _exp(profile)).max()}"


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_formats_agree(daemon, dtype):
    data = images.get("coffee_1000x667_q90_420.jpg").data
    want = _exp("clip-224", "coffee_1000x667_q90_420.jpg").astype(dtype)
    itemsize = np.dtype(dtype).itemsize

    r = daemon.post(data, format="npy", dtype=dtype)
    assert r.status_code == 200, describe_error(r)
    a = decode_npy(r.content)
    assert a.dtype == np.dtype(dtype).newbyteorder("<") and np.array_equal(a, want)
    assert r.headers.get("X-Profile") == "clip-224"

    r = daemon.post(data, format="raw", dtype=dtype)
    assert r.status_code == 200, describe_error(r)
    assert r.headers["Content-Type"].split(";")[0] == "application/octet-stream"
    assert r.headers["X-Tensor-Shape"].replace(" ", "") == "1,3,224,224"
    assert r.headers["X-Tensor-Dtype"] == dtype
    assert r.headers.get("X-Profile") == "clip-224"
    assert len(r.content) == 3 * 224 * 224 * itemsize
    assert int(r.headers["Content-Length"]) == len(r.content)
    raw = np.frombuffer(r.content, dtype=np.dtype(dtype).newbyteorder("<")).reshape(1, 3, 224, 224)
    assert np.array_equal(raw, want)

    r = daemon.post(data, format="json", dtype=dtype)
    assert r.status_code == 200, describe_error(r)
    assert r.headers["Content-Type"].split(";")[0] == "application/json"
    assert r.headers.get("X-Profile") == "clip-224"
    j = r.json()
    assert j["profile"] == "clip-224" and j["shape"] == [1, 3, 224, 224] and j["dtype"] == dtype
    assert isinstance(j["data"], list) and len(j["data"]) == 3 * 224 * 224
    # Printed so that the value read back (as a double) rounds to the exact same float.
    vals = np.array(j["data"], dtype=np.float64).astype(dtype).reshape(1, 3, 224, 224)
    bad = vals != want
    assert not bad.any(), (f"{int(bad.sum())} JSON values do not round-trip, e.g. "
                           f"{j['data'][int(np.flatnonzero(bad)[0])]!r} vs "
                           f"{want.ravel()[int(np.flatnonzero(bad)[0])]!r}")


def test_json_batch_shape(daemon):
    parts = [images.get(PHOTO).data, images.get("rocket_333x500_q90_420.jpg").data]
    r = daemon.post_batch(parts, format="json", profile="siglip-224")
    assert r.status_code == 200, describe_error(r)
    j = json.loads(r.content)
    assert j["shape"] == [2, 3, 224, 224] and j["profile"] == "siglip-224"
    got = np.array(j["data"], np.float64).astype(np.float32).reshape(2, 3, 224, 224)
    assert np.array_equal(got[0], _exp("siglip-224")[0])
    assert np.array_equal(got[1], _exp("siglip-224", "rocket_333x500_q90_420.jpg")[0])


def test_exif_parameter(daemon):
    name = "exif_o6_640x480.jpg"
    data = images.get(name).data
    plain, rotated = _exp("clip-224", name, False), _exp("clip-224", name, True)
    assert not np.array_equal(plain, rotated)
    assert np.array_equal(daemon.tensor(data, what=name), plain), "default must be exif=0"
    assert np.array_equal(daemon.tensor(data, what=name, exif="0"), plain)
    assert np.array_equal(daemon.tensor(data, what=name, exif="1"), rotated)


@pytest.mark.parametrize("content_type", [None, "image/jpeg", "image/png", "text/plain",
                                          "application/octet-stream; charset=binary"])
def test_format_detected_from_magic_not_content_type(daemon, content_type):
    data = images.get("rocket_333x500.png").data
    r = daemon.post(data, content_type=content_type)
    assert r.status_code == 200, f"Content-Type {content_type!r}: {describe_error(r)}"
    assert np.array_equal(decode_tensor(r), _exp("clip-224", "rocket_333x500.png"))


def test_keep_alive_many_requests(daemon):
    names = [PHOTO, "rocket_333x500.png", "astronaut_640x480.webp", "gray_500x333.png"]
    for _ in range(3):
        for n in names:
            assert np.array_equal(daemon.tensor(images.get(n).data, what=n), _exp("clip-224", n)), n


def test_concurrent_clients_get_their_own_results(daemon):
    """Several threads post different images/profiles/batches at once; every answer must be
    the right tensor for that request."""
    jobs = []
    names = [PHOTO, "coffee_1000x667_q90_420.jpg", "rocket_333x500.png", "gray_640x480.jpg",
             "chelsea_1920x1080.webp", "palette_640x480.png", "up_100x100.png",
             "cmyk_640x480.jpg"]
    for i, n in enumerate(names):
        p = PROFILE_NAMES[i % len(PROFILE_NAMES)]
        jobs.append(("single", p, [n], _exp(p, n)))
    for i in range(4):
        p = PROFILE_NAMES[(i + 2) % len(PROFILE_NAMES)]
        ns = [names[(i + k) % len(names)] for k in range(3)]
        jobs.append(("batch", p, ns, np.concatenate([_exp(p, n) for n in ns])))

    import requests
    errors = []
    n_threads, rounds = 8, 3

    def worker(t):
        s = requests.Session()
        try:
            for r_ in range(rounds):
                for j, (kind, p, ns, want) in enumerate(jobs):
                    if (j + t + r_) % 2:  # each thread does a different half, in its own order
                        continue
                    if kind == "single":
                        resp = s.post(daemon.url + "/v1/preprocess",
                                      data=images.get(ns[0]).data, params={"profile": p},
                                      timeout=120)
                    else:
                        from conftest import multipart_body
                        body, ct = multipart_body([images.get(n).data for n in ns])
                        resp = s.post(daemon.url + "/v1/preprocess", data=body,
                                      headers={"Content-Type": ct}, params={"profile": p},
                                      timeout=120)
                    if resp.status_code != 200:
                        errors.append(f"thread {t}: {kind} {p} {ns}: {describe_error(resp)}")
                        continue
                    got = decode_npy(resp.content)
                    if got.shape != want.shape or not np.array_equal(got, want):
                        errors.append(f"thread {t}: {kind} {p} {ns}: wrong tensor "
                                      f"(shape {got.shape} vs {want.shape})")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"thread {t}: {type(e).__name__}: {e}")
        finally:
            s.close()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(300)
    assert not any(th.is_alive() for th in threads), "client threads hung"
    assert not errors, "\n".join(errors[:10])
    assert daemon.alive()
