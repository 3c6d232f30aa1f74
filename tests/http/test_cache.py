"""The content cache (cache_bytes > 0): a hit answers the bytes of the miss that stored it,
options that change the tensor are part of the key, eviction keeps within the budget, and a
content hash (X-Content-Hash) can be sent instead of the image ({"hash": ...} in JSON)."""
import re

import numpy as np
import pytest

import images
from conftest import assert_error, decode_npy, describe_error

NAMES = ["astronaut_640x480_q90_420.jpg", "rocket_333x500.png", "coffee_1000x667.webp",
         "gray_640x480.jpg"]
SLOT = 3 * 224 * 224 * 4  # one clip-224 float32 tensor


def _metric(d, name):
    m = re.search(rf"^{name} (\d+)$", d.get("/metrics").text, re.M)
    assert m, name
    return int(m.group(1))


def _json(d, items, **params):
    return d.session.post(d.url + "/v1/preprocess", json={"images": items}, params=params,
                          timeout=120)


@pytest.fixture
def cached(daemon_factory):
    return daemon_factory({"cache_bytes": "64MiB"})


def test_hit_is_byte_identical_to_miss(cached, daemon):
    data = images.get(NAMES[0]).data
    miss = cached.post(data)
    assert miss.status_code == 200, describe_error(miss)
    h = miss.headers["X-Content-Hash"]
    assert re.fullmatch(r"[0-9a-f]{32}", h), h
    assert _metric(cached, "clipprep_cache_misses_total") == 1
    hit = cached.post(data)
    assert hit.status_code == 200, describe_error(hit)
    assert hit.content == miss.content
    assert hit.headers["X-Content-Hash"] == h
    assert _metric(cached, "clipprep_cache_hits_total") == 1
    assert _metric(cached, "clipprep_cache_entries") == 1
    # and both equal what a daemon without the cache answers (which sends no hash)
    plain = daemon.post(data)
    assert plain.content == miss.content
    assert "X-Content-Hash" not in plain.headers


@pytest.mark.parametrize("params", [{"dtype": "float16"}, {"profile": "siglip-384"},
                                    {"mode": "fast"}, {"exif": "1"},
                                    {"reference": "transformers5"}])
def test_options_are_part_of_the_key(cached, daemon, params):
    data = images.get(NAMES[0]).data
    assert cached.post(data).status_code == 200
    other = cached.post(data, params=params)
    assert other.status_code == 200, describe_error(other)
    assert _metric(cached, "clipprep_cache_hits_total") == 0
    assert other.content == daemon.post(data, params=params).content
    again = cached.post(data, params=params)
    assert again.content == other.content
    assert _metric(cached, "clipprep_cache_hits_total") == 1


def test_batches_mix_hits_and_misses(cached, daemon):
    datas = [images.get(n).data for n in NAMES]
    for i in (1, 3):  # warm two of the four
        assert cached.post(datas[i]).status_code == 200
    r = cached.post_batch(datas, format="raw")
    assert r.status_code == 200, describe_error(r)
    assert _metric(cached, "clipprep_cache_hits_total") == 2
    hashes = r.headers["X-Content-Hash"].split(",")
    assert len(hashes) == 4 and len(set(hashes)) == 4
    want = daemon.post_batch(datas, format="raw")
    assert r.content == want.content
    # all four hit now: answered without the queue, still the same bytes, any format
    for fmt in ("raw", "npy", "json"):
        r2 = cached.post_batch(datas, format=fmt)
        assert r2.status_code == 200, describe_error(r2)
        assert r2.content == daemon.post_batch(datas, format=fmt).content
    assert _metric(cached, "clipprep_cache_hits_total") == 2 + 12


def test_hash_api(cached):
    data = images.get(NAMES[1]).data
    first = cached.post(data)
    h = first.headers["X-Content-Hash"]
    r = _json(cached, [{"hash": h}, {"hash": h.upper()}])
    assert r.status_code == 200, describe_error(r)
    a = decode_npy(r.content)
    assert np.array_equal(a[0:1], decode_npy(first.content))
    assert np.array_equal(a[1:2], decode_npy(first.content))
    # under other options the entry does not exist: a clear miss, never another tensor
    assert_error(_json(cached, [{"hash": h}], dtype="float16"), 404, "cache_miss", index=0)
    assert_error(_json(cached, [{"b64": "QUJD"}, {"hash": h}, {"hash": "f" * 32}]), 404,
                 "cache_miss", index=2)


def test_eviction_under_the_budget(daemon_factory):
    d = daemon_factory({"cache_bytes": 2 * SLOT + 4096})  # two tensors fit, not three
    hashes = []
    for n in NAMES[:3]:
        r = d.post(images.get(n).data)
        assert r.status_code == 200, describe_error(r)
        hashes.append(r.headers["X-Content-Hash"])
    assert _metric(d, "clipprep_cache_evictions_total") == 1
    assert _metric(d, "clipprep_cache_entries") == 2
    assert _metric(d, "clipprep_cache_bytes") <= 2 * SLOT + 4096
    assert_error(_json(d, [{"hash": hashes[0]}]), 404, "cache_miss", index=0)
    r = _json(d, [{"hash": hashes[2]}, {"hash": hashes[1]}])
    assert r.status_code == 200, describe_error(r)


def test_failed_batches_store_nothing_wrong(cached, daemon):
    good = images.get(NAMES[0]).data
    png = images.get(NAMES[1]).data
    r = cached.post_batch([png[:300], good])
    assert r.status_code == 400
    # whatever was or was not stored, the next answer is the exact one
    assert cached.post(good).content == daemon.post(good).content


def test_hash_with_cache_off(daemon):
    assert_error(_json(daemon, [{"hash": "0" * 32}]), 404, "cache_miss", index=0)


def test_hits_into_shared_memory(daemon_factory, daemon):
    """format=shm: a hit is copied into the lease's slot, as a miss is computed into it."""
    import uuid

    import shm_consumer

    d = daemon_factory({"cache_bytes": "64MiB", "shm_name": f"/clipprep-test-{uuid.uuid4().hex[:16]}",
                        "shm_bytes": "16MiB", "shm_slot_bytes": "1MiB"})
    datas = [images.get(n).data for n in NAMES[:2]]
    body_want = daemon.post_batch(datas, format="raw").content
    for round_ in range(2):
        r = d.post_batch(datas, format="shm")
        assert r.status_code == 200, describe_error(r)
        j = r.json()
        got = shm_consumer.read_tensor(j["shm"]["key"], j["shm"]["offset"], j["shm"]["byte_size"],
                                       j["dtype"], j["shape"])[0]
        assert got.tobytes() == body_want, f"round {round_}"
        assert d.request("DELETE", f"/v1/leases/{j['lease']['id']}").status_code == 200
    assert _metric(d, "clipprep_cache_hits_total") == 2
