#!/usr/bin/env python3
"""A separate consumer process for clipprepd's format=shm answers (tests/http/test_shm.py).

    python tests/shm_consumer.py KEY OFFSET BYTE_SIZE DTYPE SHAPE [--out FILE.npy]

KEY is the POSIX shm object name from the answer ("/clipprep-..."; it lives at
/dev/shm/<KEY without the leading slash>), OFFSET and BYTE_SIZE the tensor's place in it,
DTYPE "float32" or "float16", SHAPE comma-separated ("2,3,224,224"). The object is mapped
read-only with mmap (never written, never unlinked); the bytes [OFFSET, OFFSET+BYTE_SIZE) are
taken as a C-order little-endian tensor of that dtype and shape.

Prints one JSON line on stdout: {"sha256": hex of the BYTE_SIZE bytes, "first": the first 8
values, "shape": [...], "dtype": ..., "object_size": size of the shm object in bytes}. With
--out, also saves the tensor as .npy. Exit status 2 (message on stderr) when the object is
missing, too small, or BYTE_SIZE does not match DTYPE x SHAPE.

Only the standard library and numpy: it must not share anything with the test process but
the shm object itself.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import mmap
import os
import sys

import numpy as np

DTYPES = {"float32": "<f4", "float16": "<f2"}


def shm_path(key: str) -> str:
    if not key.startswith("/") or "/" in key[1:] or len(key) < 2:
        raise ValueError(f"not a POSIX shm name (one leading slash, no other): {key!r}")
    return "/dev/shm/" + key[1:]


def read_tensor(key: str, offset: int, byte_size: int, dtype: str, shape) -> tuple[np.ndarray, int]:
    """Maps the object read-only and copies the tensor out. Returns (array, object size)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    dt = np.dtype(DTYPES[dtype])
    shape = tuple(int(x) for x in shape)
    want = int(np.prod(shape)) * dt.itemsize
    if want != byte_size:
        raise ValueError(f"byte_size {byte_size} != {dtype} x {shape} = {want} bytes")
    if offset < 0 or byte_size <= 0:
        raise ValueError(f"bad offset/byte_size {offset}/{byte_size}")
    path = shm_path(key)
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if offset + byte_size > size:
            raise ValueError(f"[{offset}, {offset + byte_size}) lies outside {path} "
                             f"({size} bytes)")
        base = offset - offset % mmap.ALLOCATIONGRANULARITY
        m = mmap.mmap(fd, offset + byte_size - base, flags=mmap.MAP_SHARED,
                      prot=mmap.PROT_READ, offset=base)
    finally:
        os.close(fd)
    try:
        view = np.frombuffer(m, dtype=dt, count=byte_size // dt.itemsize, offset=offset - base)
        arr = view.reshape(shape).copy()
        del view
    finally:
        m.close()
    return arr, size


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("key")
    ap.add_argument("offset", type=int)
    ap.add_argument("byte_size", type=int)
    ap.add_argument("dtype")
    ap.add_argument("shape", help="comma-separated, e.g. 1,3,224,224")
    ap.add_argument("--out", help="save the tensor as .npy here")
    a = ap.parse_args(argv)
    try:
        shape = [int(x) for x in a.shape.split(",") if x.strip()]
        arr, size = read_tensor(a.key, a.offset, a.byte_size, a.dtype, shape)
    except (OSError, ValueError) as e:
        print(f"shm_consumer: {e}", file=sys.stderr)
        return 2
    if a.out:
        np.save(a.out, arr, allow_pickle=False)
    flat = arr.reshape(-1)
    print(json.dumps({
        "sha256": hashlib.sha256(arr.tobytes(order="C")).hexdigest(),
        "first": [float(x) for x in flat[:8]],
        "shape": list(arr.shape),
        "dtype": a.dtype,
        "object_size": size,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
