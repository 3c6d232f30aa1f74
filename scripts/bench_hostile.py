#!/usr/bin/env python3
"""The hostile-client figure (docs/deployment.md, Security): for each attack of issue #13, the
answer, its size per request byte and the time to answer, then the daemon's peak RSS (VmHWM)
after the whole set, against one daemon started with the given config keys.

    .venv/bin/python scripts/bench_hostile.py [--daemon-bin bin/clipprepd] [key=value ...]

A benchmark, not a test: numbers vary with the machine; the assertions live in
tests/http/test_hostile.py."""
from __future__ import annotations

import argparse
import io
import json
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import multipart_body  # noqa: E402


def png(w, h):
    b = io.BytesIO()
    Image.new("RGB", (w, h), (10, 200, 30)).save(b, "PNG")
    return b.getvalue()


def jpeg_claiming(w, h):
    b = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 90, 90)).save(b, "JPEG", quality=50)
    d = bytearray(b.getvalue())
    i = d.index(b"\xff\xc0")
    struct.pack_into(">HH", d, i + 5, h, w)
    return bytes(d)


def vm_hwm_kib(pid):
    for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
        if ln.startswith("VmHWM:"):
            return int(ln.split()[1])
    return -1


def start(binary, cfg):
    tmp = Path(tempfile.mkdtemp())
    (tmp / "c.json").write_text(json.dumps(cfg))
    p = subprocess.Popen([binary, "--config", str(tmp / "c.json")], stderr=subprocess.PIPE,
                         text=True)
    for ln in p.stderr:
        if '"listening"' in ln:
            port = json.loads(ln)["port"]
            break
    else:
        raise SystemExit(f"daemon exited ({p.wait()})")
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    return p, port


def trickle_until_cut(port, n=64, limit_s=120.0):
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    for s in socks:
        s.sendall(b"POST /v1/preprocess HTTP/1.1\r\n")
        s.settimeout(0.05)
    t0, open_ = time.monotonic(), set(range(n))
    while open_ and time.monotonic() - t0 < limit_s:
        for i in list(open_):
            try:
                if socks[i].recv(1) == b"":
                    open_.discard(i)
                    continue
            except socket.timeout:
                pass
            except OSError:
                open_.discard(i)
                continue
            try:
                socks[i].send(b"X")
            except OSError:
                open_.discard(i)
    for s in socks:
        s.close()
    return time.monotonic() - t0, len(open_)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon-bin", default=str(ROOT / "bin" / "clipprepd"))
    ap.add_argument("keys", nargs="*", help="config key=value (JSON values)")
    a = ap.parse_args()
    cfg = {"profiles_dir": str(ROOT / "config" / "profiles"), "port": 0, "backend": "cpu",
           "shm_bytes": 0}
    for kv in a.keys:
        k, v = kv.split("=", 1)
        try:
            cfg[k] = json.loads(v)
        except ValueError:
            cfg[k] = v
    p, port = start(a.daemon_bin, cfg)
    url = f"http://127.0.0.1:{port}"
    base = vm_hwm_kib(p.pid)
    tiny = [png(1, 1)] * 256
    attacks = [
        ("256 x 1x1 PNG, siglip-384, format=json", tiny, "siglip-384", "json"),
        ("256 x 1x1 PNG, siglip-384, format=raw", tiny, "siglip-384", "raw"),
        ("1x6400000 PNG, clip-336", [png(1, 6400000)], "clip-336", "raw"),
        ("256 JPEG headers claiming 7000x7000", [jpeg_claiming(7000, 7000)] * 256, "clip-224",
         "raw"),
    ]
    shown = {k: v for k, v in cfg.items() if k not in ("profiles_dir", "port")}
    print(f"config: {json.dumps(shown)}")
    print("| attack | request bytes | answer | answer bytes | answer / request byte | time |")
    print("|---|---|---|---|---|---|")
    for name, parts, prof, fmt in attacks:
        body, ct = multipart_body(parts)
        t0 = time.monotonic()
        r = requests.post(f"{url}/v1/preprocess", params={"profile": prof, "format": fmt},
                          data=body, headers={"Content-Type": ct}, timeout=600)
        dt = time.monotonic() - t0
        code = "200" if r.ok else f"{r.status_code} {r.json()['error']['code']}"
        print(f"| {name} | {len(body)} | {code} | {len(r.content)} | "
              f"{len(r.content) / len(body):.1f} | {dt * 1000:.0f} ms |")
    took, left = trickle_until_cut(port)
    print(f"| 64 sockets trickling their headers | | {64 - left} of 64 cut | | | {took:.1f} s |")
    print(f"\npeak RSS (VmHWM): {base / 1024:.0f} MiB at start, "
          f"{vm_hwm_kib(p.pid) / 1024:.0f} MiB after the set")
    p.terminate()
    p.wait(30)


if __name__ == "__main__":
    main()
