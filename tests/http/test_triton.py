"""/v2: Triton's HTTP protocol (KServe v2 + binary tensor data + system shared memory), driven
with Triton's own Python client (tritonclient[http], pinned in tests/requirements.txt).

Each profile is a model named after it: input "images" (BYTES [N], one encoded image per
element), output "pixel_values" (FP32, or FP16 with the request parameter dtype=float16,
[N,3,H,W]). Every tensor is compared with the daemon's /v1/preprocess answer for the same
images (format=raw) and with the reference."""
from __future__ import annotations

import base64
import uuid

import numpy as np
import pytest
import requests
import tritonclient.http as httpclient
import tritonclient.utils.shared_memory as shm
from tritonclient.utils import InferenceServerException

import images
import reference as ref
from conftest import decode_tensor, describe_error

HW = {"clip-224": 224, "clip-336": 336, "openclip-224": 224, "siglip-224": 224, "siglip-384": 384}
PROFILES = list(HW)
A = "astronaut_640x480_q90_420.jpg"
MIX = ["astronaut_640x480_q90_420.jpg", "rocket_333x500.png", "coffee_1000x667.webp",
       "gray_640x480.jpg", "cmyk_640x480.jpg", "odd_17x9.jpg", "palette_640x480.png",
       "px_1x1.png", "rgba_640x480.png", "strip_3000x20.jpg"]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

@pytest.fixture
def client(daemon):
    c = httpclient.InferenceServerClient(url=f"{daemon.host}:{daemon.port}", network_timeout=120.0,
                                         connection_timeout=30.0)
    try:
        yield c
    finally:
        c.close()


def v1(daemon, names, profile="clip-224", dtype="float32") -> np.ndarray:
    """The /v1/preprocess answer for the same images (format=raw, multipart batch)."""
    r = daemon.post_batch([images.get(n).data for n in names], profile=profile, format="raw",
                          dtype=dtype)
    assert r.status_code == 200, f"/v1/preprocess {names} {profile} {dtype}: {describe_error(r)}"
    return decode_tensor(r)


def expected(names, profile="clip-224", dtype="float32") -> np.ndarray:
    want = np.concatenate([ref.expected(profile, images.get(n).data)[0] for n in names])
    return want.astype(np.float16) if dtype == "float16" else want


def images_input(names, binary=True) -> httpclient.InferInput:
    inp = httpclient.InferInput("images", [len(names)], "BYTES")
    inp.set_data_from_numpy(np.array([images.get(n).data for n in names], dtype=np.object_),
                            binary_data=binary)
    return inp


def infer(client, names, profile="clip-224", binary_output=True, outputs=True, **kw):
    outs = [httpclient.InferRequestedOutput("pixel_values", binary_data=binary_output)] \
        if outputs else None
    return client.infer(profile, [images_input(names)], outputs=outs, **kw)


def check_output(result, names, profile, datatype="FP32") -> np.ndarray:
    hw = HW[profile]
    resp = result.get_response()
    assert resp.get("model_name") == profile, f"model_name {resp.get('model_name')!r}: {resp}"
    out = result.get_output("pixel_values")
    assert out is not None, f"no 'pixel_values' output in {resp}"
    assert out["datatype"] == datatype, f"output datatype {out['datatype']!r}, want {datatype}"
    assert out["shape"] == [len(names), 3, hw, hw], \
        f"output shape {out['shape']}, want {[len(names), 3, hw, hw]}"
    a = result.as_numpy("pixel_values")
    assert a is not None, f"as_numpy('pixel_values') is None; output: {out}"
    assert a.shape == (len(names), 3, hw, hw), a.shape
    return a


def assert_same(got: np.ndarray, want: np.ndarray, what: str):
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, want {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, want {want.shape}"
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)
        k = tuple(bad[0])
        raise AssertionError(f"{what}: {len(bad)} values differ, first at {k}: {got[k]!r} vs "
                             f"{want[k]!r}; max |diff| "
                             f"{np.abs(got.astype(np.float64) - want.astype(np.float64)).max()}")


def raises_triton(fn, *a, **kw) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as ei:
        fn(*a, **kw)
    e = ei.value
    assert e.message() and e.message().strip(), f"empty error message: {e!r}"
    return e


def triton_error(r: requests.Response, status: int) -> str:
    """Asserts a Triton-shaped error: the status and a JSON body {"error": "<message>"}."""
    assert r.status_code == status, f"expected {status}, got {describe_error(r)}"
    ct = r.headers.get("Content-Type", "").split(";")[0].strip()
    assert ct == "application/json", f"error Content-Type {ct!r}"
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"].strip(), \
        f"not a Triton error body {{\"error\": \"...\"}}: {body!r}"
    return body["error"]


# --------------------------------------------------------------------------------------------
# server and models
# --------------------------------------------------------------------------------------------

def test_server_live_ready_and_metadata(client, daemon):
    assert client.is_server_live() is True
    assert client.is_server_ready() is True
    md = client.get_server_metadata()
    assert md.get("name") == "clipprep", f"server metadata: {md}"
    assert isinstance(md.get("version"), str) and md["version"], f"server metadata: {md}"
    ext = md.get("extensions")
    assert isinstance(ext, list), f"server metadata has no extensions list: {md}"
    for e in ("binary_tensor_data", "system_shared_memory", "cuda_shared_memory"):
        assert e in ext, f"extension {e!r} not in {ext}"
    # the health routes answer 200 with an empty-or-JSON body, as Triton's do
    for path in ("/v2/health/live", "/v2/health/ready"):
        r = daemon.get(path)
        assert r.status_code == 200, f"GET {path}: {describe_error(r)}"


def test_every_profile_is_a_ready_model_with_metadata(client):
    for p in PROFILES:
        hw = HW[p]
        assert client.is_model_ready(p) is True, f"model {p} not ready"
        md = client.get_model_metadata(p)
        assert md.get("name") == p, f"{p}: metadata name {md.get('name')!r}"
        ins = [(i["name"], i["datatype"], i["shape"]) for i in md.get("inputs", [])]
        assert ins == [("images", "BYTES", [-1])], f"{p}: inputs {md.get('inputs')}"
        outs = [(o["name"], o["datatype"], o["shape"]) for o in md.get("outputs", [])]
        assert outs == [("pixel_values", "FP32", [-1, 3, hw, hw])], f"{p}: outputs {md.get('outputs')}"


def test_unknown_model(client, daemon):
    assert client.is_model_ready("no-such-model") is False
    e = raises_triton(client.get_model_metadata, "no-such-model")
    assert e.status() == "400", f"metadata of an unknown model: status {e.status()}, {e.message()}"
    e = raises_triton(infer, client, [A], "no-such-model")
    assert e.status() == "400", f"infer on an unknown model: status {e.status()}, {e.message()}"
    assert "no-such-model" in e.message(), f"message does not name the model: {e.message()!r}"
    triton_error(daemon.get("/v2/models/no-such-model"), 400)


# --------------------------------------------------------------------------------------------
# inference
# --------------------------------------------------------------------------------------------

def test_infer_binary_output_equals_v1_and_reference(client, daemon):
    names = [A]
    r = infer(client, names, request_id="req-7")
    got = check_output(r, names, "clip-224")
    assert r.get_response().get("id") == "req-7", f"request id not echoed: {r.get_response()}"
    assert_same(got, v1(daemon, names), "/v2 binary output vs /v1")
    assert_same(got, expected(names), "/v2 binary output vs reference")


@pytest.mark.parametrize("profile", ["clip-224", "siglip-384", "openclip-224"])
def test_infer_batch_of_mixed_images(client, daemon, profile):
    names = MIX
    got = check_output(infer(client, names, profile), names, profile)
    assert_same(got, v1(daemon, names, profile), f"/v2 {profile} batch vs /v1")
    want = expected(names, profile) if profile != "openclip-224" else None
    if want is not None:
        for k, n in enumerate(names):
            assert_same(got[k], want[k], f"/v2 {profile} image {k} ({n}) vs reference")


def test_infer_json_output_equals_binary_output(client, daemon):
    names = ["odd_17x9.jpg", "px_1x1.png", A]
    r = infer(client, names, binary_output=False)
    out = r.get_output("pixel_values")
    assert out is not None and "data" in out, \
        f"binary_data=False: the output should carry JSON 'data': {str(r.get_response())[:300]}"
    assert "binary_data_size" not in (out.get("parameters") or {}), out.get("parameters")
    got = check_output(r, names, "clip-224")
    assert_same(got, v1(daemon, names), "/v2 JSON output vs /v1")
    binary = check_output(infer(client, names, binary_output=True), names, "clip-224")
    assert_same(got, binary, "/v2 JSON output vs binary output")


def test_infer_without_requested_outputs_returns_pixel_values(client, daemon):
    names = ["gray_640x480.jpg", "rocket_333x500.png"]
    got = check_output(infer(client, names, outputs=False), names, "clip-224")
    assert_same(got, v1(daemon, names), "/v2 default output vs /v1")


@pytest.mark.parametrize("binary", [True, False])
def test_infer_float16(client, daemon, binary):
    names = [A, "cmyk_640x480.jpg"]
    r = infer(client, names, "siglip-224", binary_output=binary, parameters={"dtype": "float16"})
    got = check_output(r, names, "siglip-224", datatype="FP16")
    assert_same(got, v1(daemon, names, "siglip-224", "float16"), "/v2 FP16 vs /v1 float16")
    assert_same(got, expected(names, "siglip-224", "float16"), "/v2 FP16 vs reference")


def test_infer_with_bad_inputs_is_a_400_error(client, daemon):
    # an image that is not one
    inp = httpclient.InferInput("images", [2], "BYTES")
    inp.set_data_from_numpy(np.array([images.get(A).data, b"not an image"], dtype=np.object_))
    e = raises_triton(client.infer, "clip-224", [inp])
    assert e.status() == "400", f"undecodable image: status {e.status()}, {e.message()}"
    # wrong input name
    inp = httpclient.InferInput("pixels", [1], "BYTES")
    inp.set_data_from_numpy(np.array([images.get(A).data], dtype=np.object_))
    e = raises_triton(client.infer, "clip-224", [inp])
    assert e.status() == "400", f"input 'pixels': status {e.status()}, {e.message()}"
    # wrong datatype
    inp = httpclient.InferInput("images", [1, 4], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 4), np.float32))
    e = raises_triton(client.infer, "clip-224", [inp])
    assert e.status() == "400", f"FP32 input: status {e.status()}, {e.message()}"
    # wrong output name
    e = raises_triton(client.infer, "clip-224", [images_input([A])],
                      outputs=[httpclient.InferRequestedOutput("logits")])
    assert e.status() == "400", f"output 'logits': status {e.status()}, {e.message()}"
    # malformed JSON, by hand: Triton-shaped error body
    triton_error(daemon.request("POST", "/v2/models/clip-224/infer", data=b"{not json",
                                headers={"Content-Type": "application/json"}), 400)


# --------------------------------------------------------------------------------------------
# system shared memory
# --------------------------------------------------------------------------------------------

def _names():
    u = uuid.uuid4().hex[:12]
    return f"region-{u}", f"/clipprep-triton-{u}"


def _regions(status) -> dict:
    """get_system_shared_memory_status() -> {name: entry}; Triton's HTTP answer is a list."""
    if isinstance(status, dict) and "regions" in status:
        status = status["regions"]
    if isinstance(status, dict):
        status = list(status.values())
    assert isinstance(status, list), f"system shm status is not a list: {status!r}"
    return {e["name"]: e for e in status}


def test_output_into_system_shared_memory_region(client, daemon):
    names = [A, "coffee_1000x667.webp", "palette_640x480.png"]
    shape = [3, 3, 224, 224]
    size = int(np.prod(shape)) * 4
    name, key = _names()
    handle = shm.create_shared_memory_region(name, key, size)
    try:
        shm.set_shared_memory_region(handle, [np.full(shape, -7.0, np.float32)])
        client.register_system_shared_memory(name, key, size)
        try:
            st = _regions(client.get_system_shared_memory_status())
            assert name in st, f"registered region {name} not in status {st}"
            assert st[name].get("key") == key and int(st[name].get("byte_size")) == size, st[name]
            one = _regions(client.get_system_shared_memory_status(region_name=name))
            assert list(one) == [name], f"status of region {name}: {one}"

            out = httpclient.InferRequestedOutput("pixel_values", binary_data=True)
            out.set_shared_memory(name, size)
            r = client.infer("clip-224", [images_input(names)], outputs=[out])
            o = r.get_output("pixel_values")
            assert o is not None and o["shape"] == shape and o["datatype"] == "FP32", o
            params = o.get("parameters") or {}
            assert params.get("shared_memory_region") == name, f"output parameters {params}"
            assert "data" not in o and "binary_data_size" not in params, \
                f"a shared-memory output must not also carry the data: {o}"
            got = shm.get_contents_as_numpy(handle, np.float32, shape).copy()
            assert_same(got, v1(daemon, names), "tensor in the registered region vs /v1")
            assert_same(got, expected(names), "tensor in the registered region vs reference")
        finally:
            client.unregister_system_shared_memory(name)
        assert name not in _regions(client.get_system_shared_memory_status()), \
            "region still listed after unregister"
        # an output into the unregistered region is refused
        out = httpclient.InferRequestedOutput("pixel_values", binary_data=True)
        out.set_shared_memory(name, size)
        e = raises_triton(client.infer, "clip-224", [images_input(names)], outputs=[out])
        assert e.status() == "400", f"unregistered region: status {e.status()}, {e.message()}"
    finally:
        shm.destroy_shared_memory_region(handle)


def test_region_offsets_are_honoured_and_bytes_outside_are_untouched(client, daemon):
    # the region starts 4096 bytes into the object; the output 1024 bytes into the region
    names = ["gray_640x480.jpg"]
    shape = [1, 3, 384, 384]
    tensor = int(np.prod(shape)) * 4
    obj = 4096 + 1024 + tensor + 4096
    name, key = _names()
    handle = shm.create_shared_memory_region(name, key, obj)
    try:
        shm.set_shared_memory_region(handle, [np.full(obj, 0xA5, np.uint8)])
        client.register_system_shared_memory(name, key, obj - 4096, offset=4096)
        try:
            out = httpclient.InferRequestedOutput("pixel_values", binary_data=True)
            out.set_shared_memory(name, tensor, offset=1024)
            client.infer("siglip-384", [images_input(names)], outputs=[out])
            got = shm.get_contents_as_numpy(handle, np.float32, shape, offset=4096 + 1024).copy()
            assert_same(got, v1(daemon, names, "siglip-384"), "tensor at region+offset vs /v1")
            raw = shm.get_contents_as_numpy(handle, np.uint8, [obj]).copy()
            before, after = raw[:4096 + 1024], raw[4096 + 1024 + tensor:]
            assert (before == 0xA5).all(), \
                f"bytes before the output changed (first at {int(np.argmax(before != 0xA5))})"
            assert (after == 0xA5).all(), \
                f"bytes after the output changed (first at +{int(np.argmax(after != 0xA5))})"
        finally:
            client.unregister_system_shared_memory(name)
    finally:
        shm.destroy_shared_memory_region(handle)


def test_region_too_small_for_the_output_is_an_error(client):
    name, key = _names()
    size = 3 * 224 * 224 * 4  # room for one image, two are asked for
    handle = shm.create_shared_memory_region(name, key, size)
    try:
        client.register_system_shared_memory(name, key, size)
        try:
            out = httpclient.InferRequestedOutput("pixel_values", binary_data=True)
            out.set_shared_memory(name, size)
            e = raises_triton(client.infer, "clip-224", [images_input([A, A])], outputs=[out])
            assert e.status() == "400", f"region too small: status {e.status()}, {e.message()}"
        finally:
            client.unregister_system_shared_memory(name)
    finally:
        shm.destroy_shared_memory_region(handle)


def test_register_errors_and_unregister_all(client):
    # a key that names no shm object
    e = raises_triton(client.register_system_shared_memory, "ghost",
                      f"/clipprep-missing-{uuid.uuid4().hex}", 4096)
    assert e.status() == "400", f"register of a missing object: {e.status()}, {e.message()}"
    (n1, k1), (n2, k2) = _names(), _names()
    h1 = shm.create_shared_memory_region(n1, k1, 8192)
    h2 = shm.create_shared_memory_region(n2, k2, 8192)
    try:
        client.register_system_shared_memory(n1, k1, 8192)
        client.register_system_shared_memory(n2, k2, 4096, offset=4096)
        # a region larger than its object is refused
        e = raises_triton(client.register_system_shared_memory, n1 + "-big", k1, 1 << 20)
        assert e.status() == "400", f"region past the object's end: {e.status()}, {e.message()}"
        st = _regions(client.get_system_shared_memory_status())
        assert {n1, n2} <= set(st), f"both regions should be listed: {st}"
        assert int(st[n2].get("offset", 0)) == 4096 and int(st[n2]["byte_size"]) == 4096, st[n2]
        # a name already registered is refused (Triton answers 400)
        e = raises_triton(client.register_system_shared_memory, n1, k1, 8192)
        assert e.status() == "400", f"registering {n1} twice: {e.status()}, {e.message()}"
        client.unregister_system_shared_memory()  # all
        st = _regions(client.get_system_shared_memory_status())
        assert n1 not in st and n2 not in st, f"regions listed after unregister-all: {st}"
        raises_triton(client.get_system_shared_memory_status, region_name=n1)
    finally:
        for h in (h1, h2):
            shm.destroy_shared_memory_region(h)


def test_cuda_shared_memory_is_refused_on_a_cpu_daemon(client, daemon, request):
    if request.config.getoption("--daemon-backend") != "cpu":
        pytest.skip("only meaningful with --daemon-backend cpu")
    handle = base64.b64encode(b"\0" * 64).decode()
    e = raises_triton(client.register_cuda_shared_memory, "gpu-region", handle, 0, 4096)
    assert e.status() == "400", f"cuda shm register: status {e.status()}, {e.message()}"
    assert "cuda" in e.message().lower(), f"the error should say CUDA is unavailable: {e.message()!r}"
    r = daemon.request("POST", "/v2/cudasharedmemory/region/gpu-region/register",
                       json={"raw_handle": {"b64": handle}, "device_id": 0, "byte_size": 4096})
    triton_error(r, 400)
