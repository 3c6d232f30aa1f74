"""tensor_digest: per batch element of `pixel_values`, the SHA-256 of its bytes (little-endian
float32, C order) and its mean, as a test's proof of which tensor Triton handed the model."""
import hashlib
import os
import sys

# The stub's embedded interpreter ignores PYTHONPATH: numpy (< 2) comes from the test venv,
# which tests/triton/triton_server.py names there.
sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                if p and p not in sys.path]

import numpy as np  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "pixel_values").as_numpy()
            x = np.ascontiguousarray(x, dtype="<f4")
            digests = np.array([[hashlib.sha256(row.tobytes()).hexdigest().encode()]
                                for row in x], dtype=np.object_)
            means = x.reshape(x.shape[0], -1).astype(np.float64).mean(axis=1, keepdims=True)
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("sha256", digests), pb_utils.Tensor("mean", means)]))
        return responses
