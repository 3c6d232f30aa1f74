"""The sidecar flow against a real tritonserver: clipprepd's pool registered once as a Triton
system shared-memory region, each /v1 format=shm answer handed to Triton by offset, the lease
released after the infer; and /v2 writing into a client region that Triton then reads. The
loops are docs/examples/triton_sidecar.py, which docs/sidecar.md shows verbatim.

Proof of exactness: the Python-backend model tensor_digest returns the SHA-256 of each batch
element it received; that must equal the SHA-256 of transformers 4.57.1's CLIPImageProcessor
output for the same bytes, and of the daemon's own format=npy answer computed separately."""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import importlib.util
import uuid

import numpy as np
import tritonclient.http as http

from conftest import REPO, decode_npy  # tests/conftest.py (daemon fixtures, helpers)
import reference  # tests/reference.py
from triton_fixtures import images, triton  # noqa: F401 (fixtures)

EXAMPLE = REPO / "docs" / "examples" / "triton_sidecar.py"


def load_example():
    spec = importlib.util.spec_from_file_location("triton_sidecar", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def sha(row: np.ndarray) -> bytes:
    return hashlib.sha256(np.ascontiguousarray(row, dtype="<f4").tobytes()).hexdigest().encode()


def reference_rows(images: list[bytes]) -> list[np.ndarray]:
    return [reference.hf_clip(b, 224, 224)[0] for b in images]


def npy_rows(daemon, images: list[bytes]) -> np.ndarray:
    r = daemon.session.post(f"{daemon.url}/v1/preprocess", params={"format": "npy"},
                            files=[(f"image{i}", b) for i, b in enumerate(images)], timeout=120)
    assert r.status_code == 200, r.text[:300]
    return decode_npy(r.content)


def pool_status(daemon) -> dict:
    return daemon.get("/v1/shm").json()["pools"][0]


def test_docs_show_the_example_verbatim():
    md = (REPO / "docs" / "sidecar.md").read_text()
    assert "```python\n" + EXAMPLE.read_text() + "```\n" in md, \
        "docs/sidecar.md must include docs/examples/triton_sidecar.py verbatim"


def test_pool_registered_once_tensors_read_by_offset_exactly(daemon, triton, images):
    ex = load_example()
    client = http.InferenceServerClient(triton.http_url)
    pool_id = ex.register_pool(daemon.url, client)
    try:
        assert pool_id == pool_status(daemon)["pool_id"]
        names = list(images)
        batches = [names[:1], names[1:4], names[4:]]  # offsets differ per answer
        for batch in batches:
            data = [images[n] for n in batch]
            got = ex.infer_via_pool(daemon.url, client, data, "tensor_digest", ["sha256", "mean"])
            ref = reference_rows(data)
            npy = npy_rows(daemon, data)
            for i, name in enumerate(batch):
                np.testing.assert_array_equal(npy[i], ref[i], err_msg=f"daemon npy vs ref: {name}")
                assert got["sha256"][i][0] == sha(ref[i]), \
                    f"{name}: Triton read another tensor than CLIPImageProcessor's"
                assert got["mean"][i][0] == ref[i].astype(np.float64).mean()
        # one registration for all of them, and every lease released after its infer
        regions = client.get_system_shared_memory_status()
        assert [r["name"] for r in regions] == ["clipprep"], regions
        st = pool_status(daemon)
        assert (st["leases"], st["slots_in_use"]) == (0, 0), st
    finally:
        client.unregister_system_shared_memory("clipprep")
        client.close()


def test_v2_output_in_client_region_read_by_triton_exactly(daemon, triton, images):
    ex = load_example()
    client = http.InferenceServerClient(triton.http_url)
    data = [images["jpeg_640x480"], images["png_rgba_300x500"], images["webp_1000x200"]]
    key = f"/clipprep-pv-{uuid.uuid4().hex[:8]}"
    try:
        got = ex.infer_via_client_region(daemon.url, client, data, "tensor_digest",
                                         ["sha256", "mean"], key=key)
    finally:
        client.close()
    ref = reference_rows(data)
    assert [g[0] for g in got["sha256"]] == [sha(r) for r in ref]
    # the example unregistered its region from both servers
    assert daemon.get("/v2/systemsharedmemory/status").json() == []


def test_consecutive_answers_each_read_their_own_tensor(daemon, triton, images):
    """After a release the next answer reuses the slots: Triton reads the new tensor at the
    same offset of the same registration (it caches nothing per offset)."""
    ex = load_example()
    client = http.InferenceServerClient(triton.http_url)
    ex.register_pool(daemon.url, client)
    try:
        a = ex.infer_via_pool(daemon.url, client, [images["png_224x224"]], "tensor_digest",
                              ["sha256"])
        b = ex.infer_via_pool(daemon.url, client, [images["jpeg_640x480"]], "tensor_digest",
                              ["sha256"])
        assert a["sha256"][0][0] == sha(reference_rows([images["png_224x224"]])[0])
        assert b["sha256"][0][0] == sha(reference_rows([images["jpeg_640x480"]])[0])
    finally:
        client.unregister_system_shared_memory("clipprep")
        client.close()


def test_concurrent_clients_share_one_registration_and_read_their_own_slots(daemon, triton,
                                                                          images):
    """8 clients at once, each its own batch: the answers hold different slots of the one
    registered region at the same time, and each infer reads its own tensor."""
    ex = load_example()
    admin = http.InferenceServerClient(triton.http_url)
    ex.register_pool(daemon.url, admin)
    names = list(images)
    batches = [[images[names[(k + j) % len(names)]] for j in range(1 + k % 3)] for k in range(8)]
    want = {k: [sha(r) for r in reference_rows(b)] for k, b in enumerate(batches)}

    def run(k):
        client = http.InferenceServerClient(triton.http_url)  # one per thread (gevent)
        try:
            return ex.infer_via_pool(daemon.url, client, batches[k], "tensor_digest", ["sha256"])
        finally:
            client.close()

    try:
        with cf.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(run, range(len(batches))))
        for k, got in enumerate(results):
            assert [g[0] for g in got["sha256"]] == want[k], f"client {k} read another tensor"
        st = pool_status(daemon)
        assert (st["leases"], st["slots_in_use"]) == (0, 0), st
    finally:
        admin.unregister_system_shared_memory("clipprep")
        admin.close()
