"""Fixtures for tests/triton: a real tritonserver (triton_server.py) with a model repository
laid out for the session, and a handful of encoded test images. The test modules import them
from here (tests/conftest.py stays the one conftest; its daemon fixtures are used too).

Model repository (one server per session, it takes seconds to start):
  tensor_digest    tests/triton/models: Python backend, SHA-256 + mean per batch element
  clip_vision      tests/triton/models/clip_vision_standin: Python stand-in for the vision
                   tower of the recipe (same input/output names as config/deploy/triton's)
  clip_preprocess  config/deploy/triton/clip_preprocess verbatim (backend "clipprep")
  clip             config/deploy/triton/clip verbatim (the ensemble)
  prep_*           variants of clip_preprocess for the backend tests (TRITON_VARIANTS)
Started with --model-control-mode=explicit and every model above loaded: tests may add
models (misconfigured ones) to server.model_repo and load them.

The tests run under .venv-triton (make venv-triton): nvidia-pytriton's server, numpy < 2 for
the Python backend, tritonclient[http,grpc], and transformers 4.57.1 + Pillow 11.3 for the
reference. The daemon fixtures come from tests/conftest.py."""
from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
REPO = HERE.parents[1]
RECIPE = REPO / "config" / "deploy" / "triton"

from triton_server import Triton  # noqa: E402

# name -> (parameters, output data type, dims, max_batch_size); each becomes a clip_preprocess
# variant in the test repository.
TRITON_VARIANTS = {
    "prep_fp16": ({"profile": "clip-224"}, "TYPE_FP16", (3, 224, 224), 8),
    "prep_siglip_exif": ({"profile": "siglip-224", "exif": "true"}, "TYPE_FP32", (3, 224, 224), 8),
    "prep_fast": ({"profile": "clip-224", "mode": "fast"}, "TYPE_FP32", (3, 224, 224), 8),
    "prep_small": ({"profile": "clip-224", "max_pixels": "100000"}, "TYPE_FP32", (3, 224, 224), 8),
    # no reference parameter: the profile's default_reference (open_clip for openclip-224)
    "prep_openclip": ({"profile": "openclip-224"}, "TYPE_FP32", (3, 224, 224), 8),
    # two instances with one thread each: concurrent executions with their own state
    "prep_two_instances": ({"profile": "clip-224", "threads": "1"}, "TYPE_FP32", (3, 224, 224), 4),
    # a long queue delay, so that concurrent requests are executed as one batch
    "prep_batch": ({"profile": "clip-224"}, "TYPE_FP32", (3, 224, 224), 8),
}
QUEUE_DELAY_US = {"prep_batch": 2000000}  # a full batch (8) runs at once
INSTANCES = {"prep_two_instances": 2}


def variant_config(name: str, params: dict, dtype: str, dims, max_batch: int) -> str:
    ps = ",\n".join(f'  {{ key: "{k}" value: {{ string_value: "{v}" }} }}'
                   for k, v in params.items())
    return (f'name: "{name}"\nbackend: "clipprep"\nmax_batch_size: {max_batch}\n'
            f'input [ {{ name: "images", data_type: TYPE_STRING, dims: [ 1 ] }} ]\n'
            f'output [ {{ name: "pixel_values", data_type: {dtype}, '
            f'dims: [ {", ".join(map(str, dims))} ] }} ]\n'
            f'instance_group [ {{ kind: KIND_CPU, count: {INSTANCES.get(name, 1)} }} ]\n'
            f'dynamic_batching {{ max_queue_delay_microseconds: {QUEUE_DELAY_US.get(name, 2000)} }}\n'
            f'parameters [\n{ps}\n]\n')


def build_model_repo(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(HERE / "models" / "tensor_digest", dest / "tensor_digest")
    shutil.copytree(HERE / "models" / "clip_vision_standin", dest / "clip_vision")
    for name in ("clip_preprocess", "clip"):
        shutil.copytree(RECIPE / name, dest / name)
        (dest / name / "1").mkdir(exist_ok=True)  # a version folder (empty for both)
    for name, (params, dtype, dims, mb) in TRITON_VARIANTS.items():
        (dest / name / "1").mkdir(parents=True)
        (dest / name / "config.pbtxt").write_text(variant_config(name, params, dtype, dims, mb))
    return dest


@pytest.fixture(scope="session")
def triton(tmp_path_factory):
    work = tmp_path_factory.mktemp("triton")
    repo = build_model_repo(work / "models")
    # explicit model control: the tests add misconfigured models later and load them by hand
    models = sorted(p.name for p in repo.iterdir())
    server = Triton(work, repo, extra_args=["--model-control-mode=explicit",
                                            *(f"--load-model={m}" for m in models)])
    yield server
    server.stop()


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------

def _picture(w: int, h: int, seed: int, mode: str = "RGB") -> Image.Image:
    """Smooth gradients plus noise: resampling has real work to do, and nothing is flat."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)),
                     ((x + y) * 127 // max(w + h - 2, 1))], axis=-1)
    px = np.clip(base + rng.integers(-40, 41, size=base.shape), 0, 255).astype(np.uint8)
    im = Image.fromarray(px)
    return im.convert(mode) if mode != "RGB" else im


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="session")
def images() -> dict[str, bytes]:
    """Mixed sizes and formats, all valid."""
    rgba = _picture(300, 500, 3, "RGBA")
    rgba.putalpha(Image.fromarray((np.arange(300 * 500) % 251).reshape(500, 300).astype(np.uint8)))
    return {
        "jpeg_640x480": encode(_picture(640, 480, 1), "JPEG", quality=90),
        "jpeg_gray_257x333": encode(_picture(257, 333, 2, "L"), "JPEG", quality=85),
        "png_rgba_300x500": encode(rgba, "PNG"),
        "webp_1000x200": encode(_picture(1000, 200, 4), "WEBP", quality=80),
        "png_224x224": encode(_picture(224, 224, 5), "PNG"),
        "jpeg_1920x1080": encode(_picture(1920, 1080, 6), "JPEG", quality=92),
    }


@pytest.fixture(scope="session")
def exif_image() -> bytes:
    """A 400x240 JPEG with EXIF orientation 6 (rotate 90 degrees clockwise to display)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(_picture(400, 240, 7), "JPEG", quality=90, exif=exif.tobytes())
