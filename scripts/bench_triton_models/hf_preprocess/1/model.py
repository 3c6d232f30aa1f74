"""Benchmark baseline: encoded images -> CLIPImageProcessor (openai/clip-vit-base-patch32's
settings, the class defaults) -> pixel_values."""
import io
import os
import sys

sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                if p and p not in sys.path]  # the stub's interpreter ignores PYTHONPATH

import numpy as np  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import CLIPImageProcessor  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        self.proc = CLIPImageProcessor()

    def execute(self, requests):
        out = []
        for r in requests:
            data = pb_utils.get_input_tensor_by_name(r, "images").as_numpy().reshape(-1)
            ims = [Image.open(io.BytesIO(b)) for b in data]
            pv = self.proc(images=ims, return_tensors="np")["pixel_values"].astype(np.float32)
            out.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("pixel_values", pv)]))
        return out
