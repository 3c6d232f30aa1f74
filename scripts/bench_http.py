"""The measurements behind scripts/bench.sh. See that file for what is compared."""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / ".bench"
TICKS = os.sysconf("SC_CLK_TCK")


def pipeline_bench(mode: str, threads: int, files: list[Path], seconds: float) -> dict:
    out = subprocess.run([str(REPO / "bin/pipeline-bench"), "--mode", mode, "--threads", str(threads),
                          "--seconds", str(seconds), *map(str, files)],
                         check=True, capture_output=True, text=True, cwd=REPO)
    return json.loads(out.stdout)


def hf_in_process(files: list[Path], seconds: float) -> dict:
    """CPU-ms per image of Pillow decode + transformers CLIPImageProcessor, one thread."""
    import io

    from PIL import Image
    from transformers import CLIPImageProcessor

    proc = CLIPImageProcessor()
    blobs = [f.read_bytes() for f in files]
    proc(images=Image.open(io.BytesIO(blobs[0])), return_tensors="np")  # warm-up
    n, c0, t0 = 0, time.process_time(), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        proc(images=Image.open(io.BytesIO(blobs[n % len(blobs)])), return_tensors="np")
        n += 1
    cpu = time.process_time() - c0
    return {"images": n, "cpu_ms_per_image": cpu * 1000 / n,
            "images_per_s": n / (time.perf_counter() - t0)}


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Daemon:
    def __init__(self, extra: dict):
        cfg = {"profiles_dir": str(REPO / "config/profiles"), "port": 0, "backend": "cpu",
               "log_level": "warn", **extra}
        self.cfg_file = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(cfg, self.cfg_file)
        self.cfg_file.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPPREP_")}
        self.proc = subprocess.Popen([str(REPO / "bin/clipprepd"), "--config", self.cfg_file.name,
                                      "--log-level", "info"],
                                     stderr=subprocess.PIPE, text=True, env=env)
        for line in self.proc.stderr:
            if '"listening"' in line:
                self.port = int(re.search(r'"port":(\d+)', line).group(1))
                break
        else:
            raise RuntimeError("daemon did not start")
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        os.unlink(self.cfg_file.name)


def http_load(url: str, blobs: list[bytes], clients: int, seconds: float, pid: int) -> dict:
    lat: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(k: int):
        s = requests.Session()
        i, mine = k, []
        while time.perf_counter() < stop:
            t = time.perf_counter()
            r = s.post(url + "/v1/preprocess?format=raw", data=blobs[i % len(blobs)])
            r.raise_for_status()
            mine.append(time.perf_counter() - t)
            i += clients
        with lock:
            lat.extend(mine)

    # warm-up (scratch buffers, connections)
    for b in blobs:
        requests.post(url + "/v1/preprocess?format=raw", data=b).raise_for_status()
    c0, t0 = proc_cpu_s(pid), time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - t0, proc_cpu_s(pid) - c0
    lat.sort()
    return {"images": len(lat), "cpu_ms_per_image": cpu * 1000 / len(lat),
            "images_per_s": len(lat) / wall,
            "p50_ms": 1000 * statistics.median(lat), "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))]}


def open_loop(url: str, blobs: list[bytes], rate: float, seconds: float) -> dict:
    """Requests sent on a fixed schedule (rate per second), whatever the answers do; latency is
    measured from the scheduled time, so falling behind shows up (no coordinated omission)."""
    import queue

    n = int(rate * seconds)
    t0 = time.perf_counter() + 0.2
    slots: queue.Queue = queue.Queue()
    for i in range(n):
        slots.put((i, t0 + i / rate))
    lat: list[float] = []
    lock = threading.Lock()

    def sender():
        s = requests.Session()
        while True:
            try:
                i, at = slots.get_nowait()
            except queue.Empty:
                return
            delay = at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            s.post(url + "/v1/preprocess?format=raw", data=blobs[i % len(blobs)]).raise_for_status()
            with lock:
                lat.append(time.perf_counter() - at)

    threads = [threading.Thread(target=sender) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat.sort()
    return {"rate": rate, "images": len(lat), "p50_ms": 1000 * statistics.median(lat),
            "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))]}


def u8_levels(x, mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711)):
    """Recovers the u8 stage from a clip-224 tensor through its (monotonic) table."""
    import numpy as np

    u = np.arange(256, dtype=np.float32) / np.float32(255)
    out = np.empty(x.shape, dtype=np.int16)
    for c in range(3):
        table = (u - np.float32(mean[c])) / np.float32(std[c])
        idx = np.searchsorted(table, x[:, c])
        out[:, c] = np.clip(idx, 0, 255)
    return out


def fast_vs_exact(url: str, blobs: list[bytes]) -> dict:
    """max and mean |Δ| (u8 levels) of mode=fast against the exact output."""
    import io

    import numpy as np

    diffs = []
    for b in blobs:
        ex = np.load(io.BytesIO(requests.post(url + "/v1/preprocess", data=b).content))
        fa = requests.post(url + "/v1/preprocess?mode=fast", data=b)
        assert fa.headers.get("X-Preprocess-Mode") == "fast"
        diffs.append(np.abs(u8_levels(np.load(io.BytesIO(fa.content))) - u8_levels(ex)))
    d = np.concatenate([x.ravel() for x in diffs])
    return {"max_abs_u8": int(d.max()), "mean_abs_u8": float(d.mean()),
            "pixels_differing": float((d > 0).mean())}


def cache_on_off(args, ncpu: int) -> None:
    """The same images again and again (a catalogue re-indexed, retries): the daemon without
    and with the content cache (cache_bytes), keep-alive clients, closed loop. The warm-up of
    http_load sends every image once, so with the cache every measured request is a hit."""
    print(f"machine: {platform.machine()}, {ncpu} cores; {args.clients} clients, "
          f"{args.seconds:.0f} s per cell")
    print("| size | cache | img/s | daemon CPU-ms/img | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for cls in args.classes.split(","):
        files = sorted(BENCH.glob(f"*_{cls}.jpg"))
        if not files:
            sys.exit(f"no images for {cls} in {BENCH}")
        blobs = [f.read_bytes() for f in files]
        for label, extra in (("off", {}), ("on", {"cache_bytes": "256MiB"})):
            daemon = Daemon({"cpu_workers": ncpu, **extra})
            try:
                d = http_load(daemon.url, blobs, args.clients, args.seconds, daemon.proc.pid)
            finally:
                daemon.stop()
            print(f"| {cls} | {label} | {d['images_per_s']:.0f} | {d['cpu_ms_per_image']:.2f} | "
                  f"{d['p50_ms']:.2f} | {d['p99_ms']:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--classes", default="640x480,1920x1080,4000x3000")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--cache", action="store_true",
                    help="only the content cache on vs off, repeated images")
    args = ap.parse_args()
    ncpu = os.cpu_count() or 1
    if args.cache:
        cache_on_off(args, ncpu)
        return
    results = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {ncpu} cores",
               "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                            if l.startswith("model name")), "?"),
               "classes": {}}
    daemon = Daemon({"cpu_workers": ncpu})
    try:
        for cls in args.classes.split(","):
            files = sorted(BENCH.glob(f"*_{cls}.jpg"))
            if not files:
                sys.exit(f"no images for {cls} in {BENCH}")
            blobs = [f.read_bytes() for f in files]
            row = {
                "hf": hf_in_process(files, args.seconds),
                "c_1core": pipeline_bench("full", 1, files, args.seconds),
                "c_all": pipeline_bench("full", ncpu, files, args.seconds),
                "fast_1core": pipeline_bench("fast", 1, files, args.seconds),
                "fast_accuracy": fast_vs_exact(daemon.url, blobs),
                "decode_1core": pipeline_bench("decode", 1, files, args.seconds),
                "daemon": http_load(daemon.url, blobs, args.clients, args.seconds, daemon.proc.pid),
            }
            row["at_70pct"] = open_loop(daemon.url, blobs, 0.7 * row["daemon"]["images_per_s"],
                                        args.seconds * 2)
            results["classes"][cls] = row
            print(f"done {cls}", file=sys.stderr)
    finally:
        daemon.stop()
    BENCH.mkdir(exist_ok=True)
    (BENCH / "results.json").write_text(json.dumps(results, indent=2))

    print(f"machine: {results['machine']} ({results['cpu']}), date {results['date']}")
    print("| size | Pillow+transformers CPU-ms/img | C in-process CPU-ms/img | JPEG decode CPU-ms/img "
          "| daemon CPU-ms/img | daemon/C | HF/daemon | daemon img/s | C img/s (all cores) | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for cls, r in results["classes"].items():
        d, c = r["daemon"], r["c_1core"]
        print(f"| {cls} | {r['hf']['cpu_ms_per_image']:.2f} | {c['cpu_ms_per_image']:.2f} | "
              f"{r['decode_1core']['cpu_ms_per_image']:.2f} | {d['cpu_ms_per_image']:.2f} | "
              f"{d['cpu_ms_per_image'] / c['cpu_ms_per_image']:.2f}x | "
              f"{r['hf']['cpu_ms_per_image'] / d['cpu_ms_per_image']:.1f}x | {d['images_per_s']:.0f} | "
              f"{r['c_all']['images_per_s']:.0f} | {d['p50_ms']:.1f} | {d['p99_ms']:.1f} |")
    print()
    print("| size | peak img/s (closed loop) | open-loop rate (70%) | p50 ms | p99 ms | p99/p50 |")
    print("|---|---|---|---|---|---|")
    for cls, r in results["classes"].items():
        o = r["at_70pct"]
        print(f"| {cls} | {r['daemon']['images_per_s']:.0f} | {o['rate']:.0f}/s | {o['p50_ms']:.1f} | "
              f"{o['p99_ms']:.1f} | {o['p99_ms'] / o['p50_ms']:.2f} |")
    print()
    print("| size | exact CPU-ms/img (C, 1 core) | fast CPU-ms/img (C, 1 core) | speed-up | fast vs exact: max abs diff (u8 levels) | mean abs diff | pixels differing |")
    print("|---|---|---|---|---|---|---|")
    for cls, r in results["classes"].items():
        e, f, a = r["c_1core"], r["fast_1core"], r["fast_accuracy"]
        print(f"| {cls} | {e['cpu_ms_per_image']:.2f} | {f['cpu_ms_per_image']:.2f} | "
              f"{e['cpu_ms_per_image'] / f['cpu_ms_per_image']:.2f}x | {a['max_abs_u8']} | "
              f"{a['mean_abs_u8']:.3f} | {100 * a['pixels_differing']:.1f}% |")


if __name__ == "__main__":
    main()
