"""Benchmark sink: pixel_values -> its first value per image (see config.pbtxt)."""
import os
import sys

sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                if p and p not in sys.path]  # the stub's interpreter ignores PYTHONPATH

import triton_python_backend_utils as pb_utils  # noqa: E402


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "pixel_values").as_numpy()
            out.append(pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("first", x[:, 0, 0, :1].copy())]))
        return out
