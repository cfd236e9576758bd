"""Image preprocessing in numpy/Pillow, equal to `transformers.CLIPImageProcessor` (shortest-side
resize, centre crop) and `SiglipImageProcessor` (resize to a fixed size, no crop)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

R = Image.Resampling
_RESAMPLE = {0: R.NEAREST, 1: R.LANCZOS, 2: R.BILINEAR, 3: R.BICUBIC}


@dataclass(frozen=True)
class Preprocess:
    """Resize (shortest side to `shortest_edge`, or exactly to `resize_to`), centre crop (where
    `crop` is set), rescale, normalise."""

    shortest_edge: int = 224
    crop: tuple[int, int] | None = (224, 224)
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    rescale: float = 1 / 255
    resample: int = 3  # bicubic
    resize_to: tuple[int, int] | None = None  # (height, width): resized exactly, aspect not kept

    @classmethod
    def from_config(cls, cfg: dict) -> Preprocess:
        """From a `preprocessor_config.json`: a `size` with height and width is resized to
        exactly; `do_center_crop` false (SigLIP's processor has no crop at all) crops nothing."""
        size = cfg.get("size", 224)
        exact = isinstance(size, dict) and "height" in size and "width" in size
        resize_to = (int(size["height"]), int(size["width"])) if exact else None
        edge = size.get("shortest_edge", 224) if isinstance(size, dict) else int(size)
        crop: Any = cfg.get("crop_size", edge)
        crop_hw: tuple[int, int] | None = (
            (crop["height"], crop["width"]) if isinstance(crop, dict) else (int(crop), int(crop))
        )
        if not cfg.get("do_center_crop", not exact):
            crop_hw = None
        return cls(
            shortest_edge=edge,
            crop=crop_hw,
            resize_to=resize_to,
            mean=tuple(cfg.get("image_mean", cls.mean)),
            std=tuple(cfg.get("image_std", cls.std)),
            rescale=float(cfg.get("rescale_factor", 1 / 255)),
            resample=int(cfg.get("resample", 3)),
        )

    @property
    def out_size(self) -> tuple[int, int] | None:
        """(height, width) of what comes out; None where it follows the image (no crop, no
        exact size)."""
        return self.crop or self.resize_to

    def _size(self, img: Image.Image) -> tuple[int, int]:
        """(width, height) to resize to."""
        if self.resize_to is not None:
            return self.resize_to[1], self.resize_to[0]
        w, h = img.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        return (new_short, new_long) if w <= h else (new_long, new_short)

    def one(self, img: Image.Image) -> np.ndarray:
        size = self._size(img)
        img = img.convert("RGB").resize(size, resample=_RESAMPLE[self.resample], reducing_gap=None)
        arr = self._crop(np.asarray(img))
        x = (arr.astype(np.float64) * self.rescale).astype(np.float32)
        normalised = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return normalised.transpose(2, 0, 1)

    def _crop(self, arr: np.ndarray) -> np.ndarray:
        if self.crop is None:
            return arr
        ch, cw = self.crop
        top, left = (arr.shape[0] - ch) // 2, (arr.shape[1] - cw) // 2
        if top < 0 or left < 0:  # smaller than the crop: zero-pad, centred (rounding as HF does)
            h0, w0 = arr.shape[:2]
            nh, nw = max(ch, h0), max(cw, w0)
            pt, pl = -(-(nh - h0) // 2), -(-(nw - w0) // 2)
            padded = np.zeros((nh, nw, 3), arr.dtype)
            padded[pt : pt + h0, pl : pl + w0] = arr
            arr, top, left = padded, top + pt, left + pl
        return arr[max(top, 0) : top + ch, max(left, 0) : left + cw]

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        return np.stack([self.one(im) for im in images])
