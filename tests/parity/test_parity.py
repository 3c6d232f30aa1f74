"""Bit-exact parity of the daemon with the Python references, profile x corpus item.

For every shipped profile and every corpus image the daemon's float32 tensor must equal the
reference exactly (asserted as max |d| <= 1e-6; 0 is expected), and the u8 values recovered
from the tensor through the profile's 3x256 table must equal the uint8-stage reference exactly
(this is what a failure message reports: how many pixels differ and by how many levels).
dtype=float16 must equal reference.astype(np.float16) exactly.

References (tests/reference.py):
  clip-224, clip-336   transformers CLIPImageProcessor (slow/PIL path) on Image.open(bytes)
  siglip-224, -384     transformers SiglipImageProcessor, do_convert_rgb=True
  openclip-224         open_clip's eval transform, emulated with Pillow 11.3 (spec C.1-C.3):
                       resize in the image's own mode, half-even crop, convert("RGB"). 16-bit
                       gray is left to tests/reference (the real open_clip 3.3, Pillow 13).
  exif=1               the same references on ImageOps.exif_transpose(Image.open(bytes)) (what
                       HF's load_image does for string inputs).

Items 1 or 3 pixels tall are compared with the *intended* channels-last reading (spec B.3;
transformers' own shape inference misreads them, see test_reference.py).
The 4000x3000 photo is used for clip-224 only, to keep the run short.
"""
import functools

import numpy as np
import pytest

import images
import reference as ref
from conftest import decode_npy, describe_error

PROFILES = list(ref.PROFILES)


@functools.lru_cache(maxsize=8)
def _expected(profile: str, name: str, exif: bool):
    data = images.get(name).data
    f32, label = ref.expected(profile, data, exif=exif)
    u8 = ref.u8_stage(data, profile, exif=exif)
    f32.setflags(write=False)
    return f32, u8, label


def compare(got: np.ndarray, exp: np.ndarray, u8_exp: np.ndarray, profile: str, what: str,
            label: str) -> None:
    """Asserts exact equality; the message says by how much and where it differs."""
    assert got.shape == exp.shape, f"{what}: shape {got.shape}, reference ({label}) {exp.shape}"
    table = ref.table_for(profile)
    d = np.abs(got.astype(np.float64) - exp.astype(np.float64))
    maxd = float(np.nanmax(d)) if d.size else 0.0
    n_nan = int(np.isnan(got).sum())
    n_diff = int((d > 0).sum()) + n_nan
    u8_got = ref.recover_u8(got[0], table).astype(np.int32)
    u8_ref = u8_exp.transpose(2, 0, 1).astype(np.int32)
    not_in_table = int((u8_got < 0).sum())
    du = np.where(u8_got >= 0, np.abs(u8_got - u8_ref), 0)
    u8_bad = (u8_got != u8_ref)
    n_px = int(u8_bad.any(axis=0).sum())
    if maxd <= 1e-6 and n_nan == 0 and not u8_bad.any():
        return
    msg = [f"{what}: reference = {label}",
           f"  float: max |d| = {maxd:.9g}, {n_diff} of {got.size} values differ"
           + (f", {n_nan} NaN" if n_nan else ""),
           f"  u8 stage: {n_px} of {got.shape[2] * got.shape[3]} pixels differ, "
           f"max {int(du.max())} levels; {not_in_table} values are not table entries"]
    if u8_bad.any():
        c, y, x = (int(v) for v in np.argwhere(u8_bad)[0])
        msg.append(f"  first u8 difference at (c={c}, y={y}, x={x}): daemon "
                   f"{u8_got[c, y, x]} (float {got[0, c, y, x]!r}), reference {u8_ref[c, y, x]}")
        rows = np.flatnonzero(u8_bad.any(axis=(0, 2)))
        cols = np.flatnonzero(u8_bad.any(axis=(0, 1)))
        msg.append(f"  differing rows {rows.min()}..{rows.max()} ({len(rows)}), "
                   f"columns {cols.min()}..{cols.max()} ({len(cols)})")
        hist = np.bincount(du[u8_bad & (u8_got >= 0)].ravel(), minlength=2)
        items = [f"{k}:{v}" for k, v in enumerate(hist) if v]
        msg.append("  |du| histogram (levels:count): " + ", ".join(items[:12])
                   + (f", ... ({len(items) - 12} more)" if len(items) > 12 else ""))
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):  # a crop offset off by one?
            g = u8_got[:, max(dy, 0):u8_got.shape[1] + min(dy, 0), max(dx, 0):u8_got.shape[2] + min(dx, 0)]
            r_ = u8_ref[:, max(-dy, 0):u8_ref.shape[1] + min(-dy, 0),
                        max(-dx, 0):u8_ref.shape[2] + min(-dx, 0)]
            if g.size and np.array_equal(g, r_):
                msg.append(f"  daemon[y+{dy}, x+{dx}] == reference[y, x] on the overlap: the "
                           f"daemon's crop window is offset by ({-dy}, {-dx}) rows/columns "
                           f"(crop offset rounding?)")
    raise AssertionError("\n".join(msg))


def _cases(tag=None, huge=False):
    out = []
    for p in PROFILES:
        for it in images.corpus(tag):
            if "huge" in it.tags and not (huge and p == "clip-224"):
                continue
            if p == "openclip-224" and it.mode in ref.OPEN_CLIP_EMULATED_MODES_EXCLUDED:
                continue  # tests/reference: the real open_clip with Pillow 13
            out.append((p, it.name))
    return out


CASES = [(p, n, dt) for (p, n) in _cases(huge=True) for dt in ("float32", "float16")]


def test_daemon_profiles_match_reference(daemon):
    """The daemon's shipped profiles carry the reference's output size, mean and std."""
    r = daemon.get("/v1/profiles")
    assert r.status_code == 200, describe_error(r)
    listed = {p["name"]: p for p in r.json()["profiles"]}
    for name, p in ref.PROFILES.items():
        assert name in listed, f"profile {name} missing from /v1/profiles: {sorted(listed)}"
        got = listed[name]
        out = got.get("output", {})
        assert (out.get("height"), out.get("width")) == p.out_hw, f"{name}: output {out}"
        assert np.array_equal(np.float32(got["mean"]), np.float32(p.mean)), f"{name}: mean {got['mean']}"
        assert np.array_equal(np.float32(got["std"]), np.float32(p.std)), f"{name}: std {got['std']}"


@pytest.mark.parametrize("profile,name,dtype", CASES, ids=[f"{p}-{n}-{d}" for p, n, d in CASES])
def test_parity(daemon, profile, name, dtype):
    exp, u8, label = _expected(profile, name, False)
    params = {"profile": profile} if dtype == "float32" else {"profile": profile, "dtype": dtype}
    r = daemon.post(images.get(name).data, **params)
    what = f"[{profile}] {name} dtype={dtype}"
    assert r.status_code == 200, f"{what}: {describe_error(r)}"
    assert r.headers.get("Content-Type", "").split(";")[0] == "application/x-npy", r.headers
    assert r.headers.get("X-Profile") == profile, r.headers
    got = decode_npy(r.content)
    if dtype == "float32":
        assert got.dtype == np.dtype("<f4"), f"{what}: dtype {got.dtype}"
        compare(got, exp, u8, profile, what, label)
    else:
        assert got.dtype == np.dtype("<f2"), f"{what}: dtype {got.dtype}"
        want = exp.astype(np.float16)
        if not np.array_equal(got, want):
            # Report in u8 terms when possible (float16 table entries are distinct).
            bad = got != want
            msg = (f"{what}: {int(bad.sum())} of {got.size} float16 values differ from "
                   f"reference.astype(float16); max |d| "
                   f"{float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()):.6g}")
            u8_got = ref.recover_u8(got[0], ref.table_for(profile))
            u8_ref = u8.transpose(2, 0, 1)
            msg += (f"; u8 stage: {int((u8_got != u8_ref).any(axis=0).sum())} pixels differ, "
                    f"{int((u8_got < 0).sum())} values not float16 table entries")
            raise AssertionError(msg)


EXIF_CASES = _cases("exif")


@pytest.mark.parametrize("profile,name", EXIF_CASES, ids=[f"{p}-{n}" for p, n in EXIF_CASES])
def test_parity_exif(daemon, profile, name):
    """exif=1: orientation applied before everything else, as HF's load_image does."""
    exp, u8, label = _expected(profile, name, True)
    r = daemon.post(images.get(name).data, profile=profile, exif="1")
    what = f"[{profile}] {name} exif=1"
    assert r.status_code == 200, f"{what}: {describe_error(r)}"
    compare(decode_npy(r.content), exp, u8, profile, what, label)


REF4_ITEMS = [it.name for it in images.corpus("mode")][:10]


@pytest.mark.parametrize("name", REF4_ITEMS)
def test_reference_transformers4_on_openclip_profile(daemon, name):
    """reference=transformers4 on openclip-224: transformers 4's CLIPImageProcessor at 224 px
    (convert first, floor crop) — the same tensor as clip-224, whatever the Pillow mode."""
    exp, u8, label = _expected("clip-224", name, False)
    r = daemon.post(images.get(name).data, profile="openclip-224",
                    params={"reference": "transformers4"})
    assert r.status_code == 200, describe_error(r)
    compare(decode_npy(r.content), exp, u8, "clip-224", f"[openclip-224 transformers4] {name}",
            label)
