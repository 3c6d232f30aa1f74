"""Command line, configuration validation, start-up and shutdown."""
import json
import re
import signal

import pytest

from conftest import REPO, base_config, describe_error


def test_version(run_cli):
    r = run_cli(["--version"])
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    version = (REPO / "VERSION").read_text().strip()
    assert version in out, f"--version output lacks {version!r}: {out!r}"
    assert re.search(r"cuda: (yes|no|emulated)\b", out), \
        f"--version output lacks 'cuda: yes|no' (or 'emulated', make test-emu): {out!r}"


def test_help(run_cli):
    r = run_cli(["--help"])
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    for flag in ("--config", "--port", "--host", "--backend"):
        assert flag in out, f"--help does not mention {flag}: {out!r}"


def test_unknown_config_key_refuses_to_start(run_cli):
    cfg = base_config(definitely_not_a_key=1)
    try:
        r = run_cli(["--port", "0", "--backend", "cpu"], config=cfg, timeout=20)
    except Exception as e:  # TimeoutExpired: it started serving instead of refusing
        pytest.fail(f"daemon did not refuse an unknown config key: {e}")
    assert r.returncode != 0, f"exit status 0 with an unknown key; stderr: {r.stderr!r}"
    assert "definitely_not_a_key" in r.stderr, f"stderr does not name the key: {r.stderr!r}"


@pytest.mark.parametrize("key,value", [("max_batch_size", "lots"), ("port", -5),
                                       ("backend", "abacus"), ("max_pixels", "many")])
def test_invalid_config_value_refuses_to_start(run_cli, key, value):
    cfg = base_config(**{key: value})
    try:
        r = run_cli(["--backend", "cpu"] if key != "backend" else [], config=cfg, timeout=20)
    except Exception as e:
        pytest.fail(f"daemon did not refuse {key}={value!r}: {e}")
    assert r.returncode != 0, f"exit status 0 with {key}={value!r}; stderr: {r.stderr!r}"
    assert key in r.stderr, f"stderr does not name {key}: {r.stderr!r}"


def test_decode_on_gpu_on_needs_the_cuda_backend(run_cli):
    # with backend cpu it is a configuration error naming both keys' values
    r = run_cli(["--port", "0", "--backend", "cpu"], config=base_config(decode_on_gpu="on"),
                timeout=20)
    assert r.returncode != 0, f"started with decode_on_gpu=on on the CPU backend: {r.stderr!r}"
    assert "decode_on_gpu" in r.stderr and "cpu" in r.stderr, r.stderr
    # an invalid value names the key and the choices
    r = run_cli(["--port", "0", "--backend", "cpu"], config=base_config(decode_on_gpu="yes"),
                timeout=20)
    assert r.returncode != 0 and "decode_on_gpu" in r.stderr and '"off"' in r.stderr, r.stderr


def test_missing_profiles_dir_refuses_to_start(run_cli, tmp_path):
    cfg = base_config(profiles_dir=str(tmp_path / "no-such-dir"))
    r = run_cli(["--port", "0", "--backend", "cpu"], config=cfg, timeout=20)
    assert r.returncode != 0, f"started without profiles; stderr: {r.stderr!r}"


def test_listening_log_line(daemon):
    recs = daemon.wait_log("listening")
    assert recs, f"no listening record in stderr:\n{daemon.stderr_tail()}"
    assert int(recs[0]["port"]) == daemon.port and daemon.port > 0


def test_log_lines_are_json_objects(daemon):
    lines = [ln for ln in daemon.stderr_lines() if ln.strip()]
    assert lines
    bad = []
    for ln in lines:
        try:
            ok = isinstance(json.loads(ln), dict)
        except ValueError:
            ok = False
        if not ok:
            bad.append(ln)
    assert not bad, f"{len(bad)} stderr lines are not JSON objects, e.g. {bad[:3]}"


def test_healthz(daemon):
    r = daemon.get("/healthz")
    assert r.status_code == 200, describe_error(r)
    assert r.json() == {"status": "ok"} or r.json().get("status") == "ok", r.text


def test_readyz(daemon, request):
    r = daemon.get("/readyz")
    assert r.status_code == 200, describe_error(r)
    j = r.json()
    assert j.get("ready") is True, j
    want = request.config.getoption("--daemon-backend")
    if want != "auto":
        assert j.get("backend") == want, j


def test_sigterm_exits_zero(daemon_factory):
    d = daemon_factory()
    assert d.get("/healthz").status_code == 200
    rc = d.stop(signal.SIGTERM)
    assert rc == 0, f"exit status {rc}\n{d.stderr_tail()}"


def test_default_profile_from_config(daemon_factory):
    import images
    d = daemon_factory({"default_profile": "siglip-384"})
    r = d.get("/v1/profiles")
    assert r.status_code == 200 and r.json()["default"] == "siglip-384", r.text
    r = d.post(images.get("astronaut_640x480_q90_420.jpg").data)
    assert r.status_code == 200, describe_error(r)
    assert r.headers.get("X-Profile") == "siglip-384"
    from conftest import decode_tensor
    assert decode_tensor(r).shape == (1, 3, 384, 384)


def test_unknown_default_profile_refuses_to_start(run_cli):
    r = run_cli(["--port", "0", "--backend", "cpu"],
                config=base_config(default_profile="no-such-profile"), timeout=20)
    assert r.returncode != 0, f"started with an unknown default_profile; stderr: {r.stderr!r}"
