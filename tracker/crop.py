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
    x0 = window_origin(center[0], size, rules)
    y0 = window_origin(center[1], size, rules)
    height, width = image.shape[:2]
    if x0 >= 0 and y0 >= 0 and x0 + size <= width and y0 + size <= height:
        patch = image[y0:y0 + size, x0:x0 + size]
    elif size > _LARGEST_PADDED * out_size and _samples_are_exact(size, out_size):
        return _shrink_sampled(image, x0, y0, size, out_size, pad)
    else:
        patch = _padded_window(image, x0, y0, size, pad)
    if size != out_size:
        patch = cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
    return patch


#: Windows partly outside the frame and at most this many output sizes wide are padded whole
#: (``cv2.copyMakeBorder``: 0.1-0.5 ms up to 2000 pixels); larger ones are sampled
#: (:func:`_shrink_sampled`, about 5-10 ms whatever the size, memory O(output size squared)).
_LARGEST_PADDED = 8


def _padded_window(image: np.ndarray, x0: int, y0: int, size: int, pad: np.ndarray) -> np.ndarray:
    """The whole ``size``-pixel window at ``(x0, y0)``, ``pad`` outside ``image``."""
    height, width = image.shape[:2]
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + size, width), min(y0 + size, height)
    if ix0 >= ix1 or iy0 >= iy1:
        patch = np.empty((size, size) + image.shape[2:], dtype=np.uint8)
        patch[:] = pad
        return patch
    return cv2.copyMakeBorder(
        image[iy0:iy1, ix0:ix1], iy0 - y0, y0 + size - iy1, ix0 - x0, x0 + size - ix1,
        cv2.BORDER_CONSTANT, value=[int(v) for v in np.ravel(pad)],
    )


@lru_cache(maxsize=64)
def _taps(size: int, out_size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First source index and the two 11-bit fixed-point weights OpenCV's bilinear resize
    gives each of ``out_size`` outputs when shrinking ``size`` pixels (it maps output ``i`` to
    ``float32((i + 0.5) * scale - 0.5)`` and reads that pixel and the next)."""
    scale = 1.0 / (out_size / size)
    position = ((np.arange(out_size) + 0.5) * scale - 0.5).astype(np.float32)
    first = np.floor(position).astype(np.int64)
    fraction = position - first.astype(np.float32)
    below, above = first < 0, first >= size - 1
    first[below], fraction[below] = 0, 0
    first[above], fraction[above] = size - 1, 0
    weight1 = np.rint(fraction * np.float32(2048)).astype(np.int32)
    weight0 = np.rint((np.float32(1) - fraction) * np.float32(2048)).astype(np.int32)
    for array in (first, weight0, weight1):
        array.flags.writeable = False
    return first, weight0, weight1


def _shrink_sampled(
    image: np.ndarray, x0: int, y0: int, size: int, out_size: int, pad: np.ndarray
) -> np.ndarray:
    """``cv2.resize`` (bilinear) of the padded ``size``-pixel window at ``(x0, y0)`` to
    ``out_size``, computed from the 2 x ``out_size`` rows and columns it reads.

    The window can be far larger than the frame (a frame-wide target on a 100000-pixel-wide
    frame asks for a 170000-pixel window); memory and time stay O(``out_size`` squared).
    The fixed-point arithmetic is OpenCV's (horizontal taps in int, then the vertical
    ``((a >> 4) * w) >> 16`` products rounded by 2 bits); :func:`_samples_are_exact` checks
    it against this OpenCV once per output size.
    """
    first, weight0, weight1 = _taps(size, out_size)
    second = np.minimum(first + 1, size - 1)
    taps = np.concatenate([first, second])
    rows, cols = taps + y0, taps + x0
    height, width = image.shape[:2]
    in_rows = (rows >= 0) & (rows < height)
    in_cols = (cols >= 0) & (cols < width)
    samples = np.empty((taps.size, taps.size) + image.shape[2:], dtype=np.int32)
    samples[:] = pad
    samples[np.ix_(in_rows, in_cols)] = image[np.ix_(rows[in_rows], cols[in_cols])]
    n = out_size
    w0, w1 = weight0[None, :, None], weight1[None, :, None]
    upper = samples[:n, :n] * w0 + samples[:n, n:] * w1
    lower = samples[n:, :n] * w0 + samples[n:, n:] * w1
    mixed = ((upper >> 4) * weight0[:, None, None]) >> 16
    mixed += ((lower >> 4) * weight1[:, None, None]) >> 16
    return ((mixed + 2) >> 2).astype(np.uint8)


@lru_cache(maxsize=16)
def _sampled_arithmetic_matches(out_size: int) -> bool:
    """Whether :func:`_shrink_sampled` equals this OpenCV's ``cv2.resize`` for ``out_size``
    outputs (random windows of awkward sizes, partly outside a random frame)."""
    generator = np.random.default_rng(out_size)
    image = generator.integers(0, 256, (3 * out_size, 4 * out_size, 3), dtype=np.uint8)
    pad = np.array([101, 57, 203], dtype=np.uint8)
    for size in (out_size + 1, 2 * out_size + 1, 3 * out_size, 3 * out_size + 7, 7 * out_size - 3):
        x0, y0 = -size // 3, out_size - size // 2
        full = cv2.resize(
            _padded_window(image, x0, y0, size, pad), (out_size, out_size),
            interpolation=cv2.INTER_LINEAR,
        )
        if not np.array_equal(_shrink_sampled(image, x0, y0, size, out_size, pad), full):
            return False
    return True


def _samples_are_exact(size: int, out_size: int) -> bool:
    """Whether a padded crop of ``size`` pixels can be computed from samples: a shrink other
    than by exactly 2 (OpenCV averages 2 x 2 blocks then) that this OpenCV matches."""
    return size > out_size and size != 2 * out_size and _sampled_arithmetic_matches(out_size)
