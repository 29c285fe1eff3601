"""Geometry shared by the tracking loops: boxes, context regions, windows, penalties.

Internal state uses pixel-index coordinates (the centre of pixel column ``j`` is ``x = j``);
public boxes use the corner convention ``(x, y, w, h)`` with (0, 0) the top-left corner of
the top-left pixel. The two conversions below are the only places that cross over.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np

Box = Tuple[float, float, float, float]


def box_to_center(box: Box) -> Tuple[float, float, float, float]:
    """``(x, y, w, h)`` corner box -> ``(cx, cy, w, h)`` in pixel-index coordinates."""
    x, y, w, h = box
    return x + (w - 1) / 2, y + (h - 1) / 2, w, h


def center_to_box(cx: float, cy: float, w: float, h: float) -> Box:
    """Inverse of :func:`box_to_center`."""
    return cx + 0.5 - w / 2, cy + 0.5 - h / 2, w, h


def context_size(w: float, h: float, context_amount: float) -> float:
    """Side of the square region around a ``w`` x ``h`` target that the exemplar covers."""
    pad = context_amount * (w + h)
    return math.sqrt((w + pad) * (h + pad))


def hanning_window(size: int) -> np.ndarray:
    """``size`` x ``size`` cosine window (outer product of numpy Hann vectors), float64."""
    hann = np.hanning(size)
    return np.outer(hann, hann)


def _change(ratio: np.ndarray) -> np.ndarray:
    return np.maximum(ratio, 1.0 / ratio)


def _padded_size(w: np.ndarray, h: np.ndarray) -> np.ndarray:
    pad = (w + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))


def shape_penalty(
    pred_w: np.ndarray, pred_h: np.ndarray, target_w: float, target_h: float, penalty_k: float
) -> np.ndarray:
    """SiamRPN's penalty on candidate boxes whose scale or aspect ratio jumps.

    Sizes are in crop pixels; ``target_*`` is the current target size scaled to the crop.
    """
    scale_change = _change(_padded_size(pred_w, pred_h) / _padded_size(target_w, target_h))
    ratio_change = _change((target_w / target_h) / (pred_w / pred_h))
    return np.exp(-(ratio_change * scale_change - 1.0) * penalty_k)


def smooth_size(
    width: float, height: float, cand_w: float, cand_h: float, rate: float
) -> Tuple[float, float]:
    """Move the target size towards a candidate's by ``rate`` (0 keeps, 1 replaces)."""
    return width * (1 - rate) + cand_w * rate, height * (1 - rate) + cand_h * rate


def clip_state(
    cx: float,
    cy: float,
    w: float,
    h: float,
    frame_w: int,
    frame_h: int,
    min_size: float,
    center_offset: float = 0.0,
) -> Tuple[float, float, float, float]:
    """Keep the centre within the frame and the size within [min_size, frame size].

    The centre range is ``[0, frame_w] - center_offset`` (pysot and NanoTrack clip in
    pixel-index coordinates; DaSiamRPN in its own coordinates, half a pixel to the right).
    Along a side of the frame no longer than ``min_size`` (a tiny frame) the frame wins: the
    box spans that side exactly, so it stays inside the frame.
    """
    cx, w = _clip_axis(cx, w, frame_w, min_size, center_offset)
    cy, h = _clip_axis(cy, h, frame_h, min_size, center_offset)
    return cx, cy, w, h


def _clip_axis(
    center: float, size: float, frame: int, min_size: float, center_offset: float
) -> Tuple[float, float]:
    if frame <= min_size:
        return (frame - 1) / 2, float(frame)
    return min(max(center, -center_offset), frame - center_offset), float(min(max(size, min_size), frame))


def anchor_shapes(stride: int, ratios: Sequence[float], scales: Sequence[float]) -> np.ndarray:
    """Widths and heights (A x 2, ratio-major) of pysot's anchors: per ratio ``r`` a base
    width ``int(sqrt(stride**2 / r))`` and height ``int(width * r)``, times each scale."""
    shapes = []
    for ratio in ratios:
        base_w = int(math.sqrt(stride * stride / ratio))
        base_h = int(base_w * ratio)
        shapes.extend((base_w * scale, base_h * scale) for scale in scales)
    return np.asarray(shapes, dtype=np.float64)
