"""The reference dimension through the API: reference= on /v1, parameters.reference on /v2,
default_reference per profile and per daemon, GET /v1/profiles. The arithmetic of each
reference is checked against the libraries themselves in tests/reference and tests/parity."""
import json

import numpy as np
import pytest

import images
from conftest import PROFILES_DIR, assert_error, decode_npy, describe_error

REFS = ["transformers4", "transformers5", "transformers5-pil", "open_clip"]


def tensor(daemon, data, **params):
    r = daemon.post(data, params=params)
    assert r.status_code == 200, describe_error(r)
    return decode_npy(r.content)


def test_profiles_list_their_references(daemon):
    r = daemon.get("/v1/profiles")
    assert r.status_code == 200
    listed = {p["name"]: p for p in r.json()["profiles"]}
    for name in ("clip-224", "clip-336", "siglip-224", "siglip-384"):
        assert listed[name]["references"] == REFS
        assert listed[name]["default_reference"] == "transformers4"
    assert listed["openclip-224"]["default_reference"] == "open_clip"


def test_unknown_reference_is_a_clear_400(daemon):
    r = daemon.post(images.get("rgba_640x480.png").data, params={"reference": "hf"})
    body = assert_error(r, 400, "invalid_parameter")
    assert "transformers5-pil" in body["message"]


def test_default_is_the_profiles_and_explicit_equals_default(daemon):
    data = images.get("rgba_640x480.png").data
    base = tensor(daemon, data, profile="clip-224")
    assert np.array_equal(base, tensor(daemon, data, profile="clip-224", reference="transformers4"))
    oc = tensor(daemon, data, profile="openclip-224")
    assert np.array_equal(oc, tensor(daemon, data, profile="openclip-224", reference="open_clip"))
    # the references really differ on a transparent image
    outs = [tensor(daemon, data, profile="clip-224", reference=ref).tobytes() for ref in REFS]
    assert len(set(outs)) == len(REFS)


def test_v2_parameter_reference(daemon):
    import tritonclient.http as tc  # tests/requirements.txt: a missing client fails, never skips
    data = images.get("palette_trns_640x480.png").data
    c = tc.InferenceServerClient(daemon.url.replace("http://", ""))
    for ref in REFS:
        inp = tc.InferInput("images", [1], "BYTES")
        inp.set_data_from_numpy(np.array([data], dtype=np.object_), binary_data=True)
        got = c.infer("clip-224", [inp], parameters={"reference": ref}).as_numpy("pixel_values")
        want = tensor(daemon, data, profile="clip-224", reference=ref)
        assert np.array_equal(got, want), ref
    inp = tc.InferInput("images", [1], "BYTES")
    inp.set_data_from_numpy(np.array([data], dtype=np.object_), binary_data=True)
    with pytest.raises(Exception) as e:
        c.infer("clip-224", [inp], parameters={"reference": "transformers6"})
    assert "reference" in str(e.value)


def test_daemon_default_reference_and_profile_restrictions(daemon_factory, tmp_path):
    d = tmp_path / "profiles"
    d.mkdir()
    for name in ("clip-224", "openclip-224"):
        (d / f"{name}.json").write_text((PROFILES_DIR / f"{name}.json").read_text())
    only4 = json.loads((PROFILES_DIR / "clip-224.json").read_text())
    only4.update(name="only-t4", references=["transformers4", "transformers5"])
    (d / "only-t4.json").write_text(json.dumps(only4))
    dm = daemon_factory({"profiles_dir": str(d), "default_reference": "transformers5"})
    listed = {p["name"]: p for p in dm.get("/v1/profiles").json()["profiles"]}
    assert listed["clip-224"]["default_reference"] == "transformers5"
    assert listed["openclip-224"]["default_reference"] == "open_clip"  # its own wins
    assert listed["only-t4"]["references"] == ["transformers4", "transformers5"]
    data = images.get("rgba_640x480.png").data
    assert np.array_equal(tensor(dm, data, profile="clip-224"),
                          tensor(dm, data, profile="clip-224", reference="transformers5"))
    r = dm.post(data, params={"profile": "only-t4", "reference": "open_clip"})
    assert_error(r, 400, "invalid_parameter")


def test_bad_default_reference_stops_the_start(run_cli, tmp_path):
    p = run_cli(["--port", "0"], config={"default_reference": "transformers6"})
    assert p.returncode != 0
    assert "default_reference" in p.stderr
