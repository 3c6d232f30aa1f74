"""A real tritonserver (2.51, from PyPI's nvidia-pytriton wheel) for tests/triton and the
benchmark: lays out a backend directory (the wheel's Python backend, its stub for the running
Python, and clipprep's own backend from bin/triton/clipprep when built), starts the server on
free ports with a given model repository, waits until it is ready, stops it.

Python-backend models run in the stub under the system libpython; they import numpy (< 2),
transformers, ... from this venv's site-packages, which PYTHONPATH hands them.

For a sanitizer run by hand: CLIPPREP_TRITON_BACKEND_DIR names another build of the backend
folder (e.g. build/triton-asan/bin/triton/clipprep) and CLIPPREP_TRITON_LD_PRELOAD is put in
the server's LD_PRELOAD (the ASan runtime)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
CLIPPREP_BACKEND = Path(os.environ.get("CLIPPREP_TRITON_BACKEND_DIR",
                                       REPO / "bin" / "triton" / "clipprep")).resolve()
START_TIMEOUT_S = 120.0


def pytriton_dir() -> Path:
    import pytriton  # the nvidia-pytriton wheel (tests/requirements-triton.txt)
    return Path(pytriton.__file__).resolve().parent / "tritonserver"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_backend_dir(dest: Path, with_clipprep: bool) -> Path:
    """dest/python: the wheel's libtriton_python.so + utils + the stub for this Python;
    dest/clipprep: a link to bin/triton/clipprep (make triton-backend)."""
    src = pytriton_dir()
    py = dest / "python"
    py.mkdir(parents=True, exist_ok=True)
    for f in (src / "backends" / "python").iterdir():
        if f.is_file():
            shutil.copy2(f, py / f.name)
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = src / "python_backend_stubs" / ver / "triton_python_backend_stub"
    if not stub.is_file():
        raise RuntimeError(f"nvidia-pytriton has no Python backend stub for Python {ver}")
    shutil.copy2(stub, py / stub.name)
    if with_clipprep:
        lib = CLIPPREP_BACKEND / "libtriton_clipprep.so"
        if not lib.is_file():
            raise RuntimeError(f"{lib} does not exist: build it with `make triton-backend`")
        (dest / "clipprep").symlink_to(CLIPPREP_BACKEND)
    return dest


class Triton:
    def __init__(self, workdir: Path, model_repo: Path, with_clipprep: bool = True,
                 extra_args=()):
        self.workdir = workdir
        self.model_repo = model_repo
        self.http_port, self.grpc_port = free_port(), free_port()
        backends = make_backend_dir(workdir / "backends", with_clipprep)
        self.argv = [str(pytriton_dir() / "bin" / "tritonserver"),
                     f"--model-repository={model_repo}", f"--backend-directory={backends}",
                     f"--http-port={self.http_port}", f"--grpc-port={self.grpc_port}",
                     "--allow-metrics=false", "--log-verbose=0", *extra_args]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [sysconfig.get_paths()["purelib"], str(REPO / "tests")])
        # the copied stub finds the wheel's bundled libraries (libcudart, ...) no longer by
        # its relative RPATH
        libs = pytriton_dir().parent.parent / "nvidia_pytriton.libs"
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(libs), env.get("LD_LIBRARY_PATH", "")) if p)
        if os.environ.get("CLIPPREP_TRITON_LD_PRELOAD"):
            env["LD_PRELOAD"] = os.environ["CLIPPREP_TRITON_LD_PRELOAD"]
        self.log_path = workdir / "tritonserver.log"
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT,
                                     env=env, cwd=str(workdir), start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tritonserver exited ({self.proc.returncode}) while "
                                   f"starting\n{self.log_tail()}")
            try:
                if requests.get(f"http://{self.http_url}/v2/health/ready",
                                timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"tritonserver not ready within {START_TIMEOUT_S}s\n{self.log_tail()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
