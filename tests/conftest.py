"""Shared fixtures for the Python suites (tests/http, tests/parity).

Fixtures
  daemon          session-scoped: `bin/clipprepd --config <tmp config> --port 0` with
                  profiles_dir = the repo's config/profiles; waits for the "listening" log line
                  and /readyz; yields a Daemon (.url, .proc, .stderr_lines(), helpers); stops it
                  with SIGTERM at the end and asserts exit status 0.
  daemon_factory  function-scoped: start(config={...}) starts extra daemons with custom config
                  keys (limit tests); env={...} adds environment variables (the emulated
                  engine's CLIPPREP_EMU_* fault injection); backend=... overrides
                  --daemon-backend; all are stopped (SIGTERM, exit 0 asserted) afterwards.
  run_cli         runs the binary to completion (--version, --help, bad configs).

Helpers (import from conftest): decode_npy, decode_tensor, assert_error, raw_http,
multipart_body.

Options: --daemon-bin PATH (default bin/clipprepd), --daemon-backend cpu|cuda|auto
(default cpu). A missing binary fails the daemon tests with a clear message; it never skips.
CLIPPREP_* variables of the calling environment are not passed to the daemon (they would
override the test config).
"""
from __future__ import annotations

import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
REPO = TESTS.parent
PROFILES_DIR = REPO / "config" / "profiles"

# tests/reference (.venv-ref): torch picks its CPU kernels when it is imported.
# ATEN_CPU_CAPABILITY=avx2 makes it take the code paths transformers 5 runs on an x86-64 AVX2
# machine (the documented target) on AVX-512 machines too. It matters for bilinear: torchvision
# resizes uint8 natively only when the capability says AVX2, else through float32.
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 120.0


def pytest_addoption(parser):
    g = parser.getgroup("clipprepd")
    g.addoption("--daemon-bin", default=str(REPO / "bin" / "clipprepd"),
                help="daemon binary to test (default: bin/clipprepd)")
    g.addoption("--daemon-backend", default="cpu", choices=("cpu", "cuda", "auto"),
                help="--backend passed to the daemon (default: cpu)")


def pytest_report_header(config):
    try:
        from importlib.metadata import version
        return (f"reference: Pillow {version('pillow')}, numpy {version('numpy')}, "
                f"transformers {version('transformers')}; daemon: "
                f"{config.getoption('--daemon-bin')} --backend {config.getoption('--daemon-backend')}")
    except Exception as e:  # pragma: no cover - informational only
        return f"reference versions unavailable: {e}"


# --------------------------------------------------------------------------------------------
# Decoding responses
# --------------------------------------------------------------------------------------------

def decode_npy(content: bytes) -> np.ndarray:
    return np.load(io.BytesIO(content), allow_pickle=False)


def decode_tensor(resp: requests.Response) -> np.ndarray:
    """Decodes a successful /v1/preprocess response of any format into an ndarray."""
    ct = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if ct == "application/x-npy":
        return decode_npy(resp.content)
    if ct == "application/octet-stream":
        shape = tuple(int(x) for x in resp.headers["X-Tensor-Shape"].split(","))
        dt = {"float32": "<f4", "float16": "<f2"}[resp.headers["X-Tensor-Dtype"].strip()]
        a = np.frombuffer(resp.content, dtype=dt)
        assert a.size == int(np.prod(shape)), (a.size, shape)
        return a.reshape(shape)
    if ct == "application/json":
        j = resp.json()
        dt = {"float32": np.float32, "float16": np.float16}[j["dtype"]]
        a = np.array(j["data"], dtype=np.float64).astype(dt)
        return a.reshape(j["shape"])
    raise AssertionError(f"unexpected Content-Type {ct!r} (status {resp.status_code})")


def describe_error(resp: requests.Response) -> str:
    try:
        body = resp.text[:500]
    except Exception:
        body = repr(resp.content[:500])
    return f"HTTP {resp.status_code} {resp.headers.get('Content-Type')}: {body}"


class _Any:
    def __repr__(self):
        return "ANY"


ANY = _Any()


def assert_error(resp: requests.Response, status: int, code: str, index=ANY) -> dict:
    """Asserts an error response: HTTP status, JSON {"error":{"code","message","index"}}.
    index=ANY skips the index check; index may also be a tuple of accepted values."""
    assert resp.status_code == status, f"expected {status} {code}, got {describe_error(resp)}"
    ct = resp.headers.get("Content-Type", "")
    assert ct.split(";")[0].strip() == "application/json", f"error Content-Type {ct!r}"
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {resp.content[:300]!r}")
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    err = body["error"]
    assert err.get("code") == code, f"expected code {code!r}, got {err!r}"
    assert isinstance(err.get("message"), str) and err["message"].strip(), f"empty message: {err!r}"
    assert "index" in err, f"error object lacks 'index': {err!r}"
    if index is not ANY:
        accepted = index if isinstance(index, tuple) else (index,)
        assert err["index"] in accepted, f"expected index {index!r}, got {err!r}"
    return err


def multipart_body(parts, boundary: str | None = None, preamble: bytes = b"",
                   epilogue: bytes = b"", part_headers=None) -> tuple[bytes, str]:
    """Builds a multipart/form-data body by hand. parts: list of bytes, or of (filename, bytes)
    or (filename, bytes, content_type) tuples. Returns (body, content_type). part_headers:
    optional list of header lines (bytes) per part, replacing the default ones."""
    boundary = boundary or ("----clipprep" + uuid.uuid4().hex)
    b = boundary.encode()
    out = bytearray(preamble)
    for i, part in enumerate(parts):
        filename, ctype = f"img{i}", "application/octet-stream"
        if isinstance(part, tuple):
            filename, data = part[0], part[1]
            if len(part) > 2:
                ctype = part[2]
        else:
            data = part
        out += b"--" + b + b"\r\n"
        extra = part_headers[i] if part_headers else None
        if extra is None:
            extra = [f'Content-Disposition: form-data; name="image"; filename="{filename}"'.encode(),
                     f"Content-Type: {ctype}".encode()]
        for h in extra:
            out += h + b"\r\n"
        out += b"\r\n" + data + b"\r\n"
    out += b"--" + b + b"--\r\n" + epilogue
    return bytes(out), f"multipart/form-data; boundary={boundary}"


# --------------------------------------------------------------------------------------------
# Raw sockets (early responses, disconnects)
# --------------------------------------------------------------------------------------------

def _parse_http_response(buf: bytes):
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def raw_http(host: str, port: int, head: bytes, body_chunks=(), read_timeout: float = 60.0,
             close_after_send: bool = False):
    """Sends `head` then each chunk of `body_chunks`, stopping early if the server has already
    answered (an early 413, say) or closed. Returns (status, headers, body, bytes_sent) or, with
    close_after_send=True, closes right after sending and returns None."""
    s = socket.create_connection((host, port), timeout=read_timeout)
    sent = 0
    try:
        s.sendall(head)
        for chunk in body_chunks:
            r, _, _ = select.select([s], [], [], 0)
            if r:
                break  # the server answered (or closed) before the body was complete
            try:
                s.sendall(chunk)
                sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        if close_after_send:
            return None
        buf = b""
        deadline = time.monotonic() + read_timeout
        while time.monotonic() < deadline:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                break
            if not data:
                break
            buf += data
            parsed = _parse_http_response(buf)
            if parsed and "content-length" in parsed[1] and \
                    len(parsed[2]) >= int(parsed[1]["content-length"]):
                break
        parsed = _parse_http_response(buf)
        assert parsed is not None, f"no HTTP response (got {buf[:200]!r}) after sending {sent} bytes"
        status, headers, body = parsed
        return status, headers, body, sent
    finally:
        s.close()


# --------------------------------------------------------------------------------------------
# The daemon process
# --------------------------------------------------------------------------------------------

class DaemonStartError(Exception):
    pass


def _child_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("CLIPPREP")}


def base_config(**overrides) -> dict:
    # a shm pool of its own per daemon, so parallel runs on one host never share one
    # allow_client_shm: the suites exercise Triton's shm extension; its default (off) is
    # tested in tests/http/test_hostile.py
    cfg = {"profiles_dir": str(PROFILES_DIR), "host": "127.0.0.1", "log_level": "info",
           "shm_name": f"/clipprep-test-{uuid.uuid4().hex[:12]}", "shm_bytes": "16MiB",
           "shm_slot_bytes": "1MiB", "allow_client_shm": True}
    for k, v in overrides.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    return cfg


class Daemon:
    """A running clipprepd. Construct with Daemon.start(...)."""

    def __init__(self, proc: subprocess.Popen, workdir: Path, config: dict, argv: list[str]):
        self.proc = proc
        self.workdir = workdir
        self.config = config
        self.argv = argv
        self.host = "127.0.0.1"
        self.port: int | None = None
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._stderr_log = open(workdir / "stderr.log", "w")
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        self.session = requests.Session()

    # ---- process management ----------------------------------------------------------------
    @classmethod
    def start(cls, binary: str, workdir: Path, config: dict, backend: str = "cpu",
              extra_args=(), wait_ready: bool = True, env: dict | None = None) -> "Daemon":
        if not Path(binary).is_file() or not os.access(binary, os.X_OK):
            raise DaemonStartError(
                f"daemon binary {binary} does not exist or is not executable: build it with "
                f"`make bin/clipprepd` (the Python suites need the real daemon)")
        workdir.mkdir(parents=True, exist_ok=True)
        cfg_path = workdir / "clipprep.json"
        cfg_path.write_text(json.dumps(config, indent=1))
        argv = [binary, "--config", str(cfg_path), "--port", "0", "--backend", backend,
                *extra_args]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=open(workdir / "stdout.log", "w"),
                                stderr=subprocess.PIPE, env={**_child_env(), **(env or {})},
                                cwd=str(workdir))
        d = cls(proc, workdir, config, argv)
        try:
            d._wait_listening(START_TIMEOUT_S)
            if wait_ready:
                d.wait_ready(START_TIMEOUT_S)
        except BaseException:
            d.kill()
            raise
        return d

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self._lines.append(line)
            self._stderr_log.write(line + "\n")
            self._stderr_log.flush()
            if self.port is None and '"listening"' in line:
                try:
                    rec = json.loads(line)
                except ValueError:
                    rec = None
                if isinstance(rec, dict) and rec.get("msg") == "listening" and "port" in rec:
                    self.port = int(rec["port"])
                    if rec.get("host") and rec["host"] not in ("0.0.0.0", "::", "localhost"):
                        self.host = str(rec["host"]).strip("[]")
                    self._listening.set()
        self._stderr_log.close()

    def _wait_listening(self, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._listening.wait(0.05):
                return
            if self.proc.poll() is not None:
                self._reader.join(2)
                raise DaemonStartError(
                    f"daemon exited with status {self.proc.returncode} before listening; "
                    f"argv={self.argv}\nstderr:\n{self.stderr_tail()}")
        raise DaemonStartError(f"no JSON log line with \"msg\":\"listening\" and \"port\" within "
                               f"{timeout}s\nstderr:\n{self.stderr_tail()}")

    def wait_ready(self, timeout: float = START_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DaemonStartError(f"daemon exited ({self.proc.returncode}) while waiting for "
                                       f"/readyz\n{self.stderr_tail()}")
            try:
                r = requests.get(self.url + "/readyz", timeout=5)
                last = r
                if r.status_code == 200:
                    return r
            except requests.RequestException as e:
                last = e
            time.sleep(0.05)
        raise DaemonStartError(f"/readyz not 200 within {timeout}s (last: {last})\n"
                               f"{self.stderr_tail()}")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Sends sig and waits; returns the exit status (kills and raises on timeout)."""
        self.session.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"daemon did not exit within {timeout}s of {sig!r}\n"
                                     f"{self.stderr_tail()}")
        self._reader.join(5)
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)

    # ---- logs ----------------------------------------------------------------------------
    def stderr_lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def log_records(self) -> list[dict]:
        out = []
        for ln in self.stderr_lines():
            try:
                rec = json.loads(ln)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def wait_log(self, msg: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        """Log records with this msg, waiting (stderr is read by another thread, so a line the
        daemon wrote before answering may not be here yet) until there are at least `count`
        of them or the timeout passes; returns what there is then."""
        deadline = time.monotonic() + timeout
        while True:
            recs = [r for r in self.log_records() if r.get("msg") == msg]
            if len(recs) >= count or time.monotonic() >= deadline:
                return recs
            time.sleep(0.02)

    def stderr_tail(self, n: int = 40) -> str:
        return "\n".join(self.stderr_lines()[-n:])

    def vm_hwm_kib(self) -> int:
        """Peak resident set size of the daemon (VmHWM in /proc/<pid>/status), KiB."""
        for ln in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1])
        raise AssertionError("VmHWM not found")

    # ---- HTTP helpers ----------------------------------------------------------------------
    def get(self, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", REQUEST_TIMEOUT_S)
        return self.session.get(self.url + path, **kw)

    def request(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", REQUEST_TIMEOUT_S)
        return self.session.request(method, self.url + path, **kw)

    @staticmethod
    def _params(profile=None, format=None, dtype=None, exif=None, params=None) -> dict:
        p = dict(params or {})
        for k, v in (("profile", profile), ("format", format), ("dtype", dtype), ("exif", exif)):
            if v is not None:
                p[k] = v
        return p

    def post(self, data: bytes, *, profile=None, format=None, dtype=None, exif=None,
             params=None, content_type: str | None = "application/octet-stream",
             headers=None, timeout=REQUEST_TIMEOUT_S) -> requests.Response:
        """POST /v1/preprocess with one raw image body."""
        h = dict(headers or {})
        if content_type is not None:
            h["Content-Type"] = content_type
        return self.session.post(self.url + "/v1/preprocess", data=data, headers=h,
                                 params=self._params(profile, format, dtype, exif, params),
                                 timeout=timeout)

    def post_batch(self, parts, *, profile=None, format=None, dtype=None, exif=None,
                   params=None, timeout=REQUEST_TIMEOUT_S, **mp) -> requests.Response:
        """POST /v1/preprocess with a multipart/form-data body, one part per image."""
        body, ct = multipart_body(list(parts), **mp)
        return self.session.post(self.url + "/v1/preprocess", data=body,
                                 headers={"Content-Type": ct},
                                 params=self._params(profile, format, dtype, exif, params),
                                 timeout=timeout)

    def tensor(self, data: bytes, what: str = "", **kw) -> np.ndarray:
        """post() and decode; asserts a 200 and says which image/profile failed otherwise."""
        r = self.post(data, **kw)
        assert r.status_code == 200, f"{what} {kw}: {describe_error(r)}"
        return decode_tensor(r)

    def __repr__(self):
        return f"<Daemon pid={self.proc.pid} url={self.url if self.port else None}>"


def _start(request, workdir: Path, config: dict, backend: str | None = None, **kw) -> Daemon:
    binary = request.config.getoption("--daemon-bin")
    backend = backend or request.config.getoption("--daemon-backend")
    try:
        return Daemon.start(binary, workdir, config, backend=backend, **kw)
    except DaemonStartError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def daemon(request, tmp_path_factory):
    d = _start(request, tmp_path_factory.mktemp("clipprepd"), base_config())
    yield d
    alive_at_end = d.alive()
    rc = d.stop()
    assert alive_at_end, f"session daemon died during the tests (status {rc})\n{d.stderr_tail()}"
    assert rc == 0, f"daemon exited with status {rc} after SIGTERM\n{d.stderr_tail()}"


@pytest.fixture
def daemon_factory(request, tmp_path):
    started: list[Daemon] = []

    def start(config: dict | None = None, extra_args=(), wait_ready: bool = True,
              env: dict | None = None, backend: str | None = None) -> Daemon:
        cfg = base_config(**(config or {}))
        d = _start(request, tmp_path / f"d{len(started)}", cfg, backend=backend,
                   extra_args=extra_args, wait_ready=wait_ready, env=env)
        started.append(d)
        return d

    yield start
    failures = []
    for d in started:
        was_alive = d.alive()
        rc = d.stop()
        if was_alive and rc != 0:
            failures.append(f"{d}: exit status {rc} after SIGTERM\n{d.stderr_tail()}")
        elif not was_alive and rc != 0:
            # a crash (SIGBUS, SIGSEGV, abort) during the test fails it even when every request
            # the test made was answered; a clean exit after the test's own SIGTERM is 0
            failures.append(f"{d}: died during the test (exit status {rc})\n{d.stderr_tail()}")
    assert not failures, "\n".join(failures)


@pytest.fixture
def run_cli(request, tmp_path):
    """run_cli(args, config=None, timeout=30) -> CompletedProcess (text). If config is a dict
    it is written to a temp file and `--config FILE` is prepended."""
    binary = request.config.getoption("--daemon-bin")
    if not Path(binary).is_file():
        pytest.fail(f"daemon binary {binary} does not exist: build it with `make bin/clipprepd`",
                    pytrace=False)

    def run(args=(), config: dict | None = None, timeout: float = 30):
        argv = [binary]
        if config is not None:
            p = tmp_path / f"cfg{uuid.uuid4().hex[:8]}.json"
            p.write_text(json.dumps(config))
            argv += ["--config", str(p)]
        argv += list(args)
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env=_child_env(), stdin=subprocess.DEVNULL, cwd=str(tmp_path))

    return run
