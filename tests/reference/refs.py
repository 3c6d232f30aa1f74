"""The reference implementations a profile can be checked against, built from the profile's
own JSON (config/profiles/*.json) exactly as a user would configure each library:

  transformers5       transformers 5.23 CLIPImageProcessor / SiglipImageProcessor (torchvision)
  transformers5-pil   transformers 5.23 CLIPImageProcessorPil / SiglipImageProcessorPil
  open_clip           open_clip 3.3 image_transform(size, is_train=False, ...)

Each returns a float32 CHW ndarray for one PIL image."""
from __future__ import annotations

import numpy as np
import torch

import open_clip
from transformers import (CLIPImageProcessor, CLIPImageProcessorPil, SiglipImageProcessor,
                          SiglipImageProcessorPil)

PIL_RESAMPLE = {"bicubic": 3, "bilinear": 2}


def _hf_kwargs(prof: dict) -> dict:
    kw = dict(resample=PIL_RESAMPLE[prof["resample"]], image_mean=prof["mean"],
              image_std=prof["std"], rescale_factor=prof.get("rescale_factor", 1 / 255))
    r = prof["resize"]
    if "shortest_edge" in r:
        kw["size"] = {"shortest_edge": r["shortest_edge"]}
    else:
        kw["size"] = {"height": r["height"], "width": r["width"]}
    if prof.get("crop"):
        kw["do_center_crop"] = True
        kw["crop_size"] = {"height": prof["crop"]["height"], "width": prof["crop"]["width"]}
    else:
        kw["do_center_crop"] = False
    return kw


def transformers5(prof: dict, pil: bool):
    crop = bool(prof.get("crop"))
    if crop:
        cls = CLIPImageProcessorPil if pil else CLIPImageProcessor
    else:
        cls = SiglipImageProcessorPil if pil else SiglipImageProcessor
    proc = cls(**_hf_kwargs(prof))

    def run(im):
        out = proc(im, return_tensors="np")["pixel_values"][0]
        return np.asarray(out, dtype=np.float32)
    return run


def open_clip_ref(prof: dict):
    r = prof["resize"]
    if "shortest_edge" in r:
        assert prof["crop"]["height"] == prof["crop"]["width"] == r["shortest_edge"], prof
        size, mode = r["shortest_edge"], "shortest"
    else:
        size, mode = (r["height"], r["width"]), "squash"
    tf = open_clip.image_transform(size, is_train=False, mean=tuple(prof["mean"]),
                                   std=tuple(prof["std"]), resize_mode=mode,
                                   interpolation=prof["resample"])

    def run(im):
        with torch.no_grad():
            return tf(im).numpy().astype(np.float32)
    return run


def build(reference: str, prof: dict):
    if reference == "transformers5":
        return transformers5(prof, pil=False)
    if reference == "transformers5-pil":
        return transformers5(prof, pil=True)
    if reference == "open_clip":
        return open_clip_ref(prof)
    raise ValueError(reference)
