"""mode=fast (opt-in): JPEG DCT-domain downscaling before the exact resampler. Never the
default; close to exact but not equal; no effect where there is nothing to scale."""
import numpy as np

import images
import reference as ref
from conftest import assert_error, decode_tensor, describe_error

BIG = "hubble_4000x3000_q90_420.jpg"


def test_exact_is_the_default(daemon):
    r = daemon.post(images.get("odd_17x9.jpg").data)
    assert r.status_code == 200 and r.headers.get("X-Preprocess-Mode") == "exact"


def test_fast_mode_is_close_but_not_exact_on_a_large_jpeg(daemon):
    data = images.get(BIG).data
    exact = decode_tensor(daemon.post(data))
    r = daemon.post(data, params={"mode": "fast"})
    assert r.status_code == 200, describe_error(r)
    assert r.headers.get("X-Preprocess-Mode") == "fast"
    fast = decode_tensor(r)
    assert fast.shape == exact.shape
    assert np.array_equal(exact, ref.expected("clip-224", data)[0])
    d = np.abs(fast - exact)
    assert d.max() > 0, "fast mode decoded at full size (no DCT scaling happened)"
    # a normalised level is about 1/(255*0.27) = 0.0146: on average within a few levels
    assert d.mean() < 0.1, f"fast mode strays too far: mean |d| {d.mean():.4f}"


def test_fast_mode_changes_nothing_without_a_jpeg_to_scale(daemon):
    for name in ["astronaut_640x480.png", "astronaut_640x480_q90_420.jpg"]:  # PNG; JPEG too small
        data = images.get(name).data
        exact = decode_tensor(daemon.post(data))
        fast = decode_tensor(daemon.post(data, params={"mode": "fast"}))
        assert np.array_equal(exact, fast), name


def test_bad_mode(daemon):
    assert_error(daemon.post(images.get("odd_17x9.jpg").data, params={"mode": "quick"}), 400,
                 "invalid_parameter", index=None)
