"""Box overlap written from its definition, independent of the library and of got10k, for
tests that check tracking quality."""

from __future__ import annotations

import numpy as np


def ious(boxes: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two N x 4 arrays of ``(x, y, w, h)`` boxes (right edge ``x + w``)."""
    boxes, truth = np.atleast_2d(boxes).astype(float), np.atleast_2d(truth).astype(float)
    left = np.maximum(boxes[:, 0], truth[:, 0])
    top = np.maximum(boxes[:, 1], truth[:, 1])
    right = np.minimum(boxes[:, 0] + boxes[:, 2], truth[:, 0] + truth[:, 2])
    bottom = np.minimum(boxes[:, 1] + boxes[:, 3], truth[:, 1] + truth[:, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    return inter / (boxes[:, 2] * boxes[:, 3] + truth[:, 2] * truth[:, 3] - inter)
