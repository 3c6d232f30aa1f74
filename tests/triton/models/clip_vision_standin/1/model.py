"""clip_vision stand-in: an "embedding" that proves which tensor arrived (SHA-256 bytes of each
row in [0:32], its mean in [32]); see config.pbtxt."""
import hashlib
import os
import sys

# The stub's embedded interpreter ignores PYTHONPATH: numpy (< 2) comes from the test venv.
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
            emb = np.zeros((x.shape[0], 512), dtype=np.float32)
            for i, row in enumerate(x):
                emb[i, :32] = np.frombuffer(hashlib.sha256(row.tobytes()).digest(), np.uint8)
                emb[i, 32] = row.astype(np.float64).mean()
            responses.append(pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("image_embeds", emb)]))
        return responses
