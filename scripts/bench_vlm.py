"""scripts/bench.sh --vlm: CPU-ms per image of the vision-language profiles, the daemon (CPU
executor, one worker; encoded bytes to the arrays in a shared-memory slot, and to the npz
answer over HTTP) against transformers 5.23's processors in process (Pillow decode + the
processor, one torch thread, arrays as NumPy), both backends, on the same photographs in one
run. Prints a markdown table for docs/PERFORMANCE.md."""
from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
from pathlib import Path

import requests
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import BENCH, REPO, Daemon, proc_cpu_s  # noqa: E402

import transformers as tf  # noqa: E402

OPENAI_MEAN, OPENAI_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def processors(name: str, pil: bool):
    """The transformers processor a preset reproduces, built from the preset's own file."""
    p = json.loads((REPO / "config/profiles" / f"{name}.json").read_text())
    v = p["vlm"]
    common = dict(image_mean=p["mean"], image_std=p["std"],
                  resample=3 if p["resample"] == "bicubic" else 2)
    suffix = "Pil" if pil else ""
    kind = v["processor"]
    if kind == "qwen2_vl":
        cls = getattr(tf, "Qwen2VLImageProcessor" + suffix)
        return cls(patch_size=v["patch_size"], merge_size=v["merge_size"],
                   temporal_patch_size=v["temporal_patch_size"],
                   size={"shortest_edge": v["min_pixels"], "longest_edge": v["max_pixels"]},
                   **common)
    if kind == "siglip2_naflex":
        cls = getattr(tf, "Siglip2ImageProcessor" + suffix)
        return cls(patch_size=v["patch_size"], max_num_patches=v["max_num_patches"], **common)
    if kind == "llava_next":
        cls = getattr(tf, "LlavaNextImageProcessor" + suffix)
        t = v["tile_size"]
        return cls(image_grid_pinpoints=v["pinpoints"], size={"shortest_edge": t},
                   crop_size={"height": t, "width": t}, **common)
    if kind == "llava":
        cls = getattr(tf, "LlavaImageProcessor" + suffix)
        t = v["tile_size"]
        return cls(do_pad=True, size={"shortest_edge": t}, crop_size={"height": t, "width": t},
                   **common)
    if kind == "got_ocr2":
        cls = getattr(tf, "GotOcr2ImageProcessor" + suffix)
        t = v["tile_size"]
        return cls(crop_to_patches=True, min_patches=v["min_patches"],
                   max_patches=v["max_patches"], size={"height": t, "width": t}, **common)
    raise ValueError(kind)


def hf_ms(proc, blobs: list[bytes], seconds: float) -> float:
    proc(images=[Image.open(io.BytesIO(blobs[0]))], return_tensors="np")  # warm-up
    n, c0, t0 = 0, time.process_time(), time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 2:
        proc(images=[Image.open(io.BytesIO(blobs[n % len(blobs)]))], return_tensors="np")
        n += 1
    return (time.process_time() - c0) * 1000 / n


def daemon_ms(d: Daemon, name: str, ref: str, fmt: str, blobs: list[bytes],
              seconds: float) -> float:
    """The daemon's CPU time per image: npz = the arrays serialised into the HTTP answer;
    shm = written into a leased shared-memory slot (released at once), as a sidecar does."""
    s = requests.Session()
    url = f"{d.url}/v1/preprocess?profile={name}&reference={ref}&format={fmt}"

    def one(blob):
        r = s.post(url, data=blob)
        r.raise_for_status()
        if fmt == "shm":
            s.delete(f"{d.url}/v1/leases/{r.json()['lease']['id']}").raise_for_status()

    one(blobs[0])
    n, c0, t0 = 0, proc_cpu_s(d.proc.pid), time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 2:
        one(blobs[n % len(blobs)])
        n += 1
    return (proc_cpu_s(d.proc.pid) - c0) * 1000 / n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--classes", default="640x480,1920x1080")
    ap.add_argument("--presets", default="qwen2-vl,qwen3-vl,llava-1.5,llava-next,internvl3,"
                                         "siglip2-naflex")
    a = ap.parse_args()
    torch.set_num_threads(1)
    presets = [p for p in a.presets.split(",") if (REPO / "config/profiles" / f"{p}.json").exists()]
    d = Daemon({"cpu_workers": 1, "shm_bytes": "1GiB", "shm_slot_bytes": "4MiB"})
    try:
        print(f"machine: {platform.processor() or platform.machine()}, torch threads 1, "
              f"daemon cpu_workers 1, {time.strftime('%Y-%m-%d')}")
        print("| profile | image | transformers5 (torchvision) | daemon, shm | ratio "
              "| daemon, npz over HTTP | ratio | transformers5-pil | daemon, shm | ratio |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for cls in a.classes.split(","):
            blobs = [f.read_bytes() for f in sorted(BENCH.glob(f"*_{cls}.jpg"))]
            for name in presets:
                tv = hf_ms(processors(name, False), blobs, a.seconds)
                shm = daemon_ms(d, name, "transformers5", "shm", blobs, a.seconds)
                npz = daemon_ms(d, name, "transformers5", "npz", blobs, a.seconds)
                pil = hf_ms(processors(name, True), blobs, a.seconds)
                pshm = daemon_ms(d, name, "transformers5-pil", "shm", blobs, a.seconds)
                print(f"| {name} | {cls} | {tv:.1f} | {shm:.1f} | {tv / shm:.1f}x | {npz:.1f} | "
                      f"{tv / npz:.1f}x | {pil:.1f} | {pshm:.1f} | {pil / pshm:.1f}x |", flush=True)
    finally:
        d.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
