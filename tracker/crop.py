"""Square crops around the target, with the reference implementations' exact rules.

Coordinates are pixel-index coordinates: the centre of pixel column ``j`` is at ``x = j``
(a box ``(x, y, w, h)`` in the library's corner convention has its centre at
``(x + (w - 1) / 2, y + (h - 1) / 2)`` in these coordinates). Crops are uint8 HxWx3 in the
frame's channel order; converting to a network blob is the backend's job.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from .conventions import Convention, convention

_PYSOT = convention("pysot")


def window_origin(center: float, size: int, rules: Convention = _PYSOT) -> int:
    """First pixel index of a ``size``-pixel window centred at ``center``."""
    return int(rules.crop_origin(float(center), int(size)))


def padding_value(mean: Sequence[float], rules: Convention = _PYSOT) -> np.ndarray:
    """The uint8 fill colour for pixels outside the frame, from the frame's channel means.

    pysot, DaSiamRPN and NanoTrack truncate the mean; siamfc-pytorch lets OpenCV round it.
    """
    values = rules.padding_rounding(np.asarray(mean, dtype=np.float64))
    return np.clip(values, 0, 255).astype(np.uint8)


def crop_square(
    image: np.ndarray,
    center: Tuple[float, float],
    size: int,
    out_size: int,
    pad: np.ndarray,
    rules: Convention = _PYSOT,
) -> np.ndarray:
    """Cut a ``size`` x ``size`` window centred at ``center = (cx, cy)`` and resize it.

    Pixels outside ``image`` take the colour ``pad`` (uint8, one value per channel). The
    patch is resized to ``out_size`` with ``cv2.resize`` (bilinear) unless it already has
    that size. ``rules`` places the window (see :class:`~tracker.conventions.Convention`).
    Returns uint8 ``out_size`` x ``out_size`` x channels.
    """
    size = int(size)
    if size < 1:
        raise ValueError(f"crop size must be at least 1 pixel, got {size}")
    height, width = image.shape[:2]
    x0 = window_origin(center[0], size, rules)
    y0 = window_origin(center[1], size, rules)
    x1, y1 = x0 + size, y0 + size
    if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
        patch = image[y0:y1, x0:x1]
    else:
        rows = _rows_read_by_resize(size, out_size) if _sparse_padding_is_exact() else None
        patch = _padded_window(image, x0, y0, size, pad, rows)
    if size != out_size:
        patch = cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
    return patch


def _padded_window(
    image: np.ndarray, x0: int, y0: int, size: int, pad: np.ndarray,
    rows: Optional[np.ndarray] = None,
) -> np.ndarray:
    """The ``size``-pixel window at ``(x0, y0)``, ``pad`` outside ``image``.

    With ``rows``, only those rows are written; the others are left uninitialised. A window
    many times the output size is mostly padding that the bilinear resize never reads, and
    writing all of it (10 MB for a target as wide as a 640-pixel frame) took as long as the
    network.
    """
    height, width = image.shape[:2]
    patch = np.empty((size, size) + image.shape[2:], dtype=np.uint8)
    # One padded row copied row by row: broadcasting the per-channel colour over every
    # pixel is 20x slower.
    pad_row = np.ascontiguousarray(np.broadcast_to(pad, patch.shape[1:]))
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + size, width), min(y0 + size, height)
    if rows is None:
        patch[:] = pad_row
        if ix0 < ix1 and iy0 < iy1:
            patch[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = image[iy0:iy1, ix0:ix1]
        return patch
    patch[rows] = pad_row
    if ix0 < ix1:
        inside = rows[(rows >= iy0 - y0) & (rows < iy1 - y0)]
        patch[inside, ix0 - x0:ix1 - x0] = image[inside + y0, ix0:ix1]
    return patch


@lru_cache(maxsize=64)
def _rows_read_by_resize(size: int, out_size: int) -> Optional[np.ndarray]:
    """The source rows ``cv2.resize`` (bilinear) reads when shrinking ``size`` rows to
    ``out_size``, or ``None`` when that is most of them.

    OpenCV maps output row ``i`` to ``floor(float32((i + 0.5) * scale - 0.5))`` and reads that
    row and the next, clamped to the image; whole-number factors take other code paths that
    read every row, so they are excluded.
    """
    if size < 3 * out_size or size % out_size == 0:
        return None
    scale = 1.0 / (out_size / size)
    first = np.floor(((np.arange(out_size) + 0.5) * scale - 0.5).astype(np.float32)).astype(np.int64)
    rows = np.unique(np.clip(np.concatenate([first, first + 1]), 0, size - 1))
    rows.flags.writeable = False
    return rows


@lru_cache(maxsize=1)
def _sparse_padding_is_exact() -> bool:
    """Whether this OpenCV reads only :func:`_rows_read_by_resize`'s rows (checked once per
    process: the unread rows are set to a colour that would show in the result)."""
    generator = np.random.default_rng(0)
    image = generator.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    pad = np.array([101, 57, 203], dtype=np.uint8)
    for size, out_size, x0, y0 in ((1001, 127, -420, -455), (1856, 255, -850, -800)):
        rows = _rows_read_by_resize(size, out_size)
        if rows is None:
            return False
        sparse = _padded_window(image, x0, y0, size, pad, rows)
        sparse[np.setdiff1d(np.arange(size), rows)] = 255 - pad
        full = _padded_window(image, x0, y0, size, pad)
        shrink = [cv2.resize(p, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
                  for p in (sparse, full)]
        if not np.array_equal(*shrink):
            return False
    return True
