"""Validation and normalisation of what users hand to a tracker: frames and boxes.

Accepted frames: ``numpy.ndarray`` of dtype uint8, H x W x 3 (BGR), H x W (grayscale),
H x W x 1 (grayscale) or H x W x 4 (BGRA); any memory layout. Grayscale and BGRA are
converted to BGR. Anything else raises ``ValueError`` naming the argument.
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence, Tuple

import cv2
import numpy as np

from .geometry import Box


def as_bgr_frame(frame: object, name: str = "frame") -> np.ndarray:
    """``frame`` as an H x W x 3 uint8 BGR array, converting grayscale and BGRA."""
    if frame is None:
        raise ValueError(f"{name} is None; expected an H x W x 3 uint8 BGR numpy array")
    if not isinstance(frame, np.ndarray):
        raise ValueError(
            f"{name} must be a numpy array (H x W x 3 uint8 BGR), got {type(frame).__name__}"
        )
    if frame.dtype != np.uint8:
        raise ValueError(
            f"{name} must have dtype uint8 (0..255), got {frame.dtype}; "
            "convert it first, e.g. with cv2.convertScaleAbs or np.clip(...).astype(np.uint8)"
        )
    if frame.size == 0:
        raise ValueError(f"{name} is empty (shape {frame.shape})")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGRA2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    raise ValueError(
        f"{name} must be H x W x 3 (BGR), H x W (gray) or H x W x 4 (BGRA), got shape {frame.shape}"
    )


def as_box(box: object, frame_shape: Tuple[int, ...], name: str = "box") -> Box:
    """``box`` as four finite floats ``(x, y, w, h)`` overlapping the frame, at least one pixel
    and at most the frame in width and height."""
    if isinstance(box, np.ndarray):
        box = box.reshape(-1).tolist() if box.size == 4 else box.tolist()
    if (
        not isinstance(box, Sequence)
        or isinstance(box, (str, bytes))
        or len(box) != 4
        or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in box)
    ):
        raise ValueError(f"{name} must be four numbers (x, y, w, h), got {box!r}")
    try:
        x, y, w, h = (float(v) for v in box)
    except OverflowError:
        raise ValueError(f"{name} values must fit in a float, got {box!r:.200}") from None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise ValueError(f"{name} must be finite numbers, got {(x, y, w, h)}")
    if w <= 0 or h <= 0:
        raise ValueError(f"{name} must have positive width and height, got w={w}, h={h}")
    if w < 1 or h < 1:
        raise ValueError(f"{name} must be at least 1 pixel wide and high, got w={w}, h={h}")
    height, width = frame_shape[:2]
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise ValueError(
            f"{name} {(x, y, w, h)} lies entirely outside the {width}x{height} frame"
        )
    if w > width or h > height:
        raise ValueError(
            f"{name} {(x, y, w, h)} is larger than the {width}x{height} frame; a target is at "
            "most as wide and as high as the frame"
        )
    return x, y, w, h
