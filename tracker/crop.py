"""Square crops around the target, with the reference implementations' exact rules.

Coordinates are pixel-index coordinates: the centre of pixel column ``j`` is at ``x = j``
(a box ``(x, y, w, h)`` in the library's corner convention has its centre at
``(x + (w - 1) / 2, y + (h - 1) / 2)`` in these coordinates). Crops are uint8 HxWx3 in the
frame's channel order; converting to a network blob is the backend's job.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Sequence, Tuple

import cv2
import numpy as np

# Where an S-pixel window centred at ``c`` starts, per reference implementation.
# pysot/NanoTrack: floor(c - (S+1)/2 + 0.5); DaSiamRPN keeps its centre half a pixel to the
# right (corner coordinates) and rounds half to even; siamfc-pytorch centres the window
# exactly and rounds half to even.
_ORIGIN_RULES: Dict[str, Callable[[float, int], int]] = {
    "pysot": lambda c, s: math.floor(c - (s + 1) / 2 + 0.5),
    "dasiamrpn": lambda c, s: round(c + 0.5 - (s + 1) / 2),
    "siamfc": lambda c, s: round(c - (s - 1) / 2),
}


def window_origin(center: float, size: int, convention: str = "pysot") -> int:
    """First pixel index of a ``size``-pixel window centred at ``center``."""
    try:
        rule = _ORIGIN_RULES[convention]
    except KeyError:
        raise ValueError(
            f"convention must be one of {tuple(_ORIGIN_RULES)}, got {convention!r}"
        ) from None
    return int(rule(float(center), int(size)))


def padding_value(mean: Sequence[float], convention: str = "pysot") -> np.ndarray:
    """The uint8 fill colour for pixels outside the frame, from the frame's channel means.

    pysot, DaSiamRPN and NanoTrack truncate the mean; siamfc-pytorch lets OpenCV round it.
    """
    values = np.asarray(mean, dtype=np.float64)
    values = np.rint(values) if convention == "siamfc" else np.trunc(values)
    return np.clip(values, 0, 255).astype(np.uint8)


def crop_square(
    image: np.ndarray,
    center: Tuple[float, float],
    size: int,
    out_size: int,
    pad: np.ndarray,
    convention: str = "pysot",
) -> np.ndarray:
    """Cut a ``size`` x ``size`` window centred at ``center = (cx, cy)`` and resize it.

    Pixels outside ``image`` take the colour ``pad`` (uint8, one value per channel). The
    patch is resized to ``out_size`` with ``cv2.resize`` (bilinear) unless it already has
    that size. Returns uint8 ``out_size`` x ``out_size`` x channels.
    """
    size = int(size)
    if size < 1:
        raise ValueError(f"crop size must be at least 1 pixel, got {size}")
    height, width = image.shape[:2]
    x0 = window_origin(center[0], size, convention)
    y0 = window_origin(center[1], size, convention)
    x1, y1 = x0 + size, y0 + size
    if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
        patch = image[y0:y1, x0:x1]
    else:
        patch = np.empty((size, size) + image.shape[2:], dtype=np.uint8)
        patch[...] = pad
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if ix0 < ix1 and iy0 < iy1:
            patch[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = image[iy0:iy1, ix0:ix1]
    if size != out_size:
        patch = cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
    return patch
