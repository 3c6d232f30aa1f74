# clipprepd beside Triton: the two sidecar loops. docs/sidecar.md shows this file verbatim and
# tests/triton/test_sidecar.py runs it against a real clipprepd and a real tritonserver.
import numpy as np
import requests
import tritonclient.http as http
import tritonclient.utils.shared_memory as shm


def register_pool(clipprep: str, triton: http.InferenceServerClient) -> str:
    """Once per clipprepd start: the daemon's whole pool becomes one Triton region. Returns the
    pool_id; when a later answer carries another one, clipprepd restarted: register again."""
    pool = requests.get(f"{clipprep}/v1/shm").json()["pools"][0]
    triton.register_system_shared_memory("clipprep", pool["key"], pool["byte_size"])
    return pool["pool_id"]


def infer_via_pool(clipprep: str, triton: http.InferenceServerClient, images: list[bytes],
                   model: str, outputs: list[str]) -> dict:
    """/v1 format=shm: the tensor stays in the pool; Triton reads it at the answer's offset."""
    r = requests.post(f"{clipprep}/v1/preprocess", params={"format": "shm"},
                      files=[(f"image{i}", b) for i, b in enumerate(images)])
    r.raise_for_status()
    answer = r.json()
    try:
        pixel_values = http.InferInput("pixel_values", answer["shape"], "FP32")
        pixel_values.set_shared_memory("clipprep", answer["shm"]["byte_size"],
                                       offset=answer["shm"]["offset"])
        result = triton.infer(model, [pixel_values])
        return {name: result.as_numpy(name) for name in outputs}
    finally:  # the slots are free again at once (else after shm_lease_ttl_ms)
        requests.delete(f"{clipprep}/v1/leases/{answer['lease']['id']}")


def infer_via_client_region(clipprep: str, triton: http.InferenceServerClient,
                            images: list[bytes], model: str, outputs: list[str],
                            profile: str = "clip-224", size: int = 224,
                            key: str = "/clipprep-pv") -> dict:
    """/v2: clipprepd writes pixel_values into a region the client owns, Triton reads it.
    Needs allow_client_shm: true in clipprepd's config (off by default)."""
    nbytes = len(images) * 3 * size * size * 4
    region = shm.create_shared_memory_region("pv", key, nbytes)
    prep = http.InferenceServerClient(clipprep.removeprefix("http://"))
    try:
        prep.register_system_shared_memory("pv", key, nbytes)
        triton.register_system_shared_memory("pv", key, nbytes)
        encoded = http.InferInput("images", [len(images)], "BYTES")
        encoded.set_data_from_numpy(np.array(images, dtype=np.object_), binary_data=True)
        out = http.InferRequestedOutput("pixel_values", binary_data=True)
        out.set_shared_memory("pv", nbytes)
        prep.infer(profile, [encoded], outputs=[out])          # tensor now in the region
        pixel_values = http.InferInput("pixel_values", [len(images), 3, size, size], "FP32")
        pixel_values.set_shared_memory("pv", nbytes)
        result = triton.infer(model, [pixel_values])
        return {name: result.as_numpy(name) for name in outputs}
    finally:
        triton.unregister_system_shared_memory("pv")
        prep.unregister_system_shared_memory("pv")
        prep.close()
        shm.destroy_shared_memory_region(region)
