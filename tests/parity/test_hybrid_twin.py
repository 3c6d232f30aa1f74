"""The hybrid JPEG decode's host twin on real photographs.

Every JPEG of the test corpus (scikit-image's photographs re-encoded by Pillow: baseline and
progressive, 4:4:4 / 4:2:2 / 4:2:0, qualities, sizes up to 4000x3000, gray, CMYK, EXIF
orientations, plus the files as shipped) goes through bin/tests/test_hybrid_decode, which
entropy-decodes it the way the CUDA executor does, runs the GPU kernels' bodies on the host and
compares with libjpeg-turbo's own decode (samples) and with the CPU decoder (final RGB), byte
for byte. Files the hybrid path must not take are checked to be routed to the CPU decoder.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import images


def test_hybrid_twin_equals_libjpeg_on_photos(tmp_path, pytestconfig):
    binary = Path(pytestconfig.getoption("--daemon-bin")).parent / "tests" / "test_hybrid_decode"
    assert binary.exists(), f"{binary} is missing: build it with `make unit`"
    n = 0
    for item in images.corpus():
        if item.name.endswith((".jpg", ".jpeg")):
            (tmp_path / f"{n:04d}_{Path(item.name).stem}.jpg").write_bytes(item.data)
            n += 1
    assert n >= 20, f"only {n} JPEGs in the corpus"
    run = subprocess.run([str(binary), str(tmp_path)], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    m = re.search(r"(\d+) photos: (\d+) eligible \((\d+) byte-exact\), (\d+) routed", run.stderr)
    assert m, run.stderr[-2000:]
    files, eligible, exact, routed = map(int, m.groups())
    assert files == n
    assert exact == eligible
    assert eligible >= n // 2, run.stderr[-2000:]
