"""Clipprep with Triton, three ways, one run: images/s and server CPU-ms per image.

  sidecar   clipprepd /v1 format=shm -> Triton infer of `sink` by shm offset -> lease released
  backend   Triton ensemble clip_preprocess (libtriton_clipprep.so) -> sink
  python    Triton ensemble hf_preprocess (Python backend, transformers CLIPImageProcessor) -> sink

`sink` (scripts/bench_triton_models) returns one value per image, so the cost measured is the
preprocessing and the hand-off. CPU-ms per image is the user+system time of clipprepd,
tritonserver and its Python-backend stubs (from /proc) over the timed window, divided by the
images answered; the clients' own CPU is not counted. Closed loop: --clients threads, each
sending batches of --batch images (the same JPEG repeated) for --seconds.

Run under .venv-triton after `make all triton-backend venv-triton`:
  .venv-triton/bin/python scripts/bench_triton.py [--seconds 8] [--batch 8] [--clients 2]
Images: .bench/*_WxH.jpg from scripts/bench_images.py (made with .venv if missing)."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests
import tritonclient.http as http

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "triton")]
from conftest import Daemon, base_config  # noqa: E402  (tests/conftest.py)
from triton_server import Triton  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(roots: list[int]) -> float:
    """user+system seconds of the given processes and all their live descendants."""
    parent, ticks = {}, {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d.name)] = int(f[1])
        ticks[int(d.name)] = int(f[11]) + int(f[12])
    total = 0
    for pid in ticks:
        p = pid
        while p > 1 and p not in roots:
            p = parent.get(p, 0)
        if p in roots:
            total += ticks[pid]
    return total / TICKS


def run(send, seconds: float, clients: int, batch: int, roots: list[int]):
    send()  # warm up
    stop = time.monotonic() + seconds
    done = [0] * clients

    def loop(k):
        while time.monotonic() < stop:
            send()
            done[k] += batch

    c0, t0 = cpu_seconds(roots), time.monotonic()
    threads = [threading.Thread(target=loop, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.monotonic() - t0, cpu_seconds(roots) - c0
    n = sum(done)
    return n / wall, 1000 * cpu / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--sizes", default="640x480,1920x1080")
    a = ap.parse_args()
    bench = REPO / ".bench"
    if not list(bench.glob("*_640x480.jpg")):
        subprocess.run([str(REPO / ".venv/bin/python"), str(REPO / "scripts/bench_images.py"),
                        str(bench)], check=True)

    work = Path(tempfile.mkdtemp(prefix="bench-triton-"))
    repo = work / "models"
    shutil.copytree(REPO / "scripts" / "bench_triton_models", repo)
    shutil.copytree(REPO / "config" / "deploy" / "triton" / "clip_preprocess",
                    repo / "clip_preprocess")
    daemon = Daemon.start(str(REPO / "bin" / "clipprepd"), work / "daemon",
                          base_config(shm_bytes="256MiB", shm_slot_bytes="4MiB"))
    triton = Triton(work / "triton", repo)
    try:
        client = http.InferenceServerClient(triton.http_url)
        local = threading.local()

        def tclient():  # tritonclient.http (gevent) clients cannot be shared between threads
            if not hasattr(local, "c"):
                local.c = http.InferenceServerClient(triton.http_url)
            return local.c
        pool = requests.get(f"{daemon.url}/v1/shm").json()["pools"][0]
        client.register_system_shared_memory("clipprep", pool["key"], pool["byte_size"])
        roots = [daemon.proc.pid, triton.proc.pid]
        print(f"| size | way | images/s | server CPU-ms/img |\n|---|---|---|---|")
        for size in a.sizes.split(","):
            img = sorted(bench.glob(f"*_{size}.jpg"))[0].read_bytes()
            data = [img] * a.batch
            arr = np.array(data, dtype=np.object_).reshape(-1, 1)
            session = local

            def sidecar():
                if not hasattr(session, "s"):  # one keep-alive connection per client thread
                    session.s = requests.Session()
                s = session.s
                r = s.post(f"{daemon.url}/v1/preprocess", params={"format": "shm"},
                           files=[(f"i{k}", b) for k, b in enumerate(data)]).json()
                inp = http.InferInput("pixel_values", r["shape"], "FP32")
                inp.set_shared_memory("clipprep", r["shm"]["byte_size"], offset=r["shm"]["offset"])
                tclient().infer("sink", [inp])
                s.delete(f"{daemon.url}/v1/leases/{r['lease']['id']}")

            def ensemble(model):
                def send():
                    inp = http.InferInput("images", [len(data), 1], "BYTES")
                    inp.set_data_from_numpy(arr)
                    tclient().infer(model, [inp])
                return send

            for way, send in (("sidecar (clipprepd + shm)", sidecar),
                              ("backend (clip_preprocess ensemble)", ensemble("prep_sink")),
                              ("python (CLIPImageProcessor model)", ensemble("hf_sink"))):
                ips, ms = run(send, a.seconds, a.clients, a.batch, roots)
                print(f"| {size} | {way} | {ips:.0f} | {ms:.2f} |", flush=True)
        client.unregister_system_shared_memory("clipprep")
    finally:
        triton.stop()
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
