"""How far apart the references are: for each reference and corpus category, the largest
difference from transformers4 in the output tensor (normalised units and u8 levels) and the
share of values that differ. Runs a daemon (bin/clipprepd), which the tests prove bit-exact
to each library. Prints a markdown table (docs/exactness.md).

    .venv-ref/bin/python scripts/reference_diffs.py [--profile clip-224]
"""
import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
import images  # noqa: E402

REFS = ["transformers5", "transformers5-pil", "open_clip"]


def category(it) -> str:
    if it.mode in ("RGBA", "LA", "PA") or "trns" in it.name or "alpha" in it.name:
        return "transparency (alpha, tRNS)"
    if it.mode in ("P", "1", "I;16", "CMYK"):
        return f"mode {it.mode}"
    if it.size[0] >= 5 * it.size[1] or it.size[1] >= 5 * it.size[0]:
        return "extreme aspect ratio"
    return "photos (RGB/L)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="clip-224")
    args = ap.parse_args()
    prof = json.loads((REPO / "config/profiles" / f"{args.profile}.json").read_text())
    std = np.asarray(prof["std"], np.float64)[:, None, None]
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    cfg = Path(tempfile.mkdtemp()) / "c.json"
    cfg.write_text(json.dumps({"port": port, "profiles_dir": str(REPO / "config/profiles"),
                               "shm_bytes": 0}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPPREP_")}
    d = subprocess.Popen([str(REPO / "bin/clipprepd"), "--config", str(cfg), "--backend", "cpu"],
                         stderr=subprocess.DEVNULL, env=env)
    try:
        url = f"http://127.0.0.1:{port}/v1/preprocess"
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        stats = {}
        for it in images.corpus():
            if "huge" in it.tags:
                continue
            outs = {}
            for ref in ["transformers4"] + REFS:
                r = requests.post(url, data=it.data,
                                  params={"profile": args.profile, "reference": ref})
                r.raise_for_status()
                outs[ref] = np.load(io.BytesIO(r.content))[0].astype(np.float64)
            cat = category(it)
            for ref in REFS:
                dlt = np.abs(outs[ref] - outs["transformers4"])
                levels = dlt * std * 255  # the difference in u8 levels
                st = stats.setdefault((ref, cat), [0.0, 0.0, 0, 0, 0])
                st[0] = max(st[0], float(dlt.max()))
                st[1] = max(st[1], float(levels.max()))
                st[2] += int((levels > 0.5).sum())
                st[3] += int((dlt > 0).sum())
                st[4] += dlt.size
        cats = sorted({c for _, c in stats})
        print(f"profile {args.profile}; each cell: max |diff| in normalised units (in u8 levels); "
              "share of values off by >= 1 level; share of values not bit-equal\n")
        print("| vs transformers4 | " + " | ".join(cats) + " |")
        print("|---|" + "---|" * len(cats))
        for ref in REFS:
            cells = []
            for c in cats:
                m, lv, n1, n, t = stats[(ref, c)]
                cells.append(f"{m:.3g} ({lv:.0f} lv); {100 * n1 / t:.2g} %; {100 * n / t:.2g} %"
                             if m else "equal")
            print(f"| `{ref}` | " + " | ".join(cells) + " |")
    finally:
        d.terminate()
        d.wait(10)


if __name__ == "__main__":
    main()
