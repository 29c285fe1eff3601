"""Training targets of the three reference families, computed per pair with numpy.

The math reproduces the references' training code (``../shared/fixtures/training``):
siamfc-pytorch's label maps, pysot's ``AnchorTarget`` and NanoTrack's ``PointTarget``. All
coordinates are pixels of the search crop in the references' own convention: a point or anchor
centre at ``c`` is the number the reference computes, with no half-pixel shift. Target boxes
are corners ``(x1, y1, x2, y2)``.

These run inside data-loader workers for every pair, so each target builder computes its
anchor or point grid once, at construction.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np

from ..geometry import anchor_shapes, context_size

Masks = Tuple[np.ndarray, np.ndarray]


def siamfc_labels(
    response_size: int, r_pos: float = 16, r_neg: float = 0, total_stride: int = 8
) -> np.ndarray:
    """siamfc-pytorch's label map (``response_size`` x ``response_size`` float32).

    1 where the block (L1) distance from the map centre, in cells, is at most
    ``r_pos / total_stride``; 0.5 where it is below ``r_neg / total_stride``; 0 elsewhere.
    """
    _check_int("response_size", response_size)
    _check_int("total_stride", total_stride)
    for name, value in (("r_pos", r_pos), ("r_neg", r_neg)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0 (pixels), got {value!r}")
    offsets = np.abs(np.arange(response_size) - (response_size - 1) / 2)
    distance = offsets[None, :] + offsets[:, None]
    labels = np.where(distance < r_neg / total_stride, 0.5, 0.0)
    labels[distance <= r_pos / total_stride] = 1.0
    return labels.astype(np.float32)


def pysot_bbox(
    image_shape: Sequence[int],
    box_wh: Sequence[float] | np.ndarray,
    exemplar_size: int = 127,
    context_amount: float = 0.5,
) -> np.ndarray:
    """pysot's ``TrkDataset._get_bbox``: where a ``w`` x ``h`` target (original pixels) lies in
    a pre-cropped training image of ``image_shape`` (H, W[, C]).

    The image was cropped so that the context square of side ``s_z`` around the target spans
    ``exemplar_size`` pixels; the target is scaled by ``exemplar_size / s_z`` and centred at
    ``(W // 2, H // 2)``. ``box_wh`` is ``(w, h)`` or an ``N x 2`` array; returns the corners
    ``(x1, y1, x2, y2)`` as float64 (shape ``4`` or ``N x 4``).
    """
    if len(image_shape) < 2 or any(int(n) < 1 for n in image_shape[:2]):
        raise ValueError(f"image_shape must be (H, W[, C]) with positive sizes, got {image_shape!r}")
    sizes = np.asarray(box_wh, dtype=np.float64)
    if sizes.shape[-1:] != (2,) or sizes.ndim > 2:
        raise ValueError(f"box_wh must be (w, h) or an N x 2 array, got shape {sizes.shape}")
    if not (np.isfinite(sizes).all() and (sizes > 0).all()):
        raise ValueError(f"box_wh must hold finite sizes > 0, got {box_wh!r}")
    w, h = sizes[..., 0], sizes[..., 1]
    scale = exemplar_size / np.vectorize(context_size, otypes=[np.float64])(w, h, context_amount)
    half_w, half_h = w * scale / 2, h * scale / 2
    cx, cy = int(image_shape[1]) // 2, int(image_shape[0]) // 2
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1)


class _SampledTargets:
    """What anchor and point targets share: the score map's grid and the references' sampling
    of at most ``pos_num`` positives and ``total_num - pos_num`` negatives per positive pair,
    ``neg_num`` negatives per negative pair."""

    def __init__(
        self, score_size: int, search_size: int, stride: int, pos_num: int, total_num: int,
        neg_num: int,
    ) -> None:
        _check_int("score_size", score_size)
        _check_int("search_size", search_size)
        _check_int("stride", stride)
        for name, value in (("pos_num", pos_num), ("total_num", total_num), ("neg_num", neg_num)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if pos_num > total_num:
            raise ValueError(f"pos_num ({pos_num}) must not exceed total_num ({total_num})")
        self.score_size, self.search_size, self.stride = score_size, search_size, stride
        self.pos_num, self.total_num, self.neg_num = pos_num, total_num, neg_num
        # crop coordinate of each column (and row) of the map, the references' origin
        origin = search_size // 2 - score_size // 2 * stride
        self._cells = origin + stride * np.arange(score_size, dtype=np.float64)

    def _labels(
        self, positives: np.ndarray, negatives: np.ndarray, negative: bool, rng: np.random.Generator
    ) -> Tuple[np.ndarray, np.ndarray]:
        """The label map (1 / 0 / -1, int64) and the flat indices of its sampled positives."""
        cls = np.full(positives.shape, -1, dtype=np.int64)
        if negative:
            cls.flat[_sample(negatives, self.neg_num, rng)] = 0
            return cls, np.empty(0, dtype=np.intp)
        chosen = _sample(positives, self.pos_num, rng)
        cls.flat[chosen] = 1
        cls.flat[_sample(negatives, self.total_num - self.pos_num, rng)] = 0
        return cls, chosen


class AnchorTargets(_SampledTargets):
    """pysot's ``AnchorTarget``: classification labels and regression targets of every anchor
    of the score map for one training pair.

    ``corners`` and ``centers`` (4 x A x S x S float32) hold every anchor as ``x1, y1, x2, y2``
    and ``cx, cy, w, h``; anchor centres start at ``search_size // 2 - score_size // 2 * stride``
    and advance by ``stride`` per cell.
    """

    def __init__(
        self,
        *,
        score_size: int,
        search_size: int = 255,
        stride: int = 8,
        ratios: Sequence[float] = (0.33, 0.5, 1, 2, 3),
        scales: Sequence[float] = (8,),
        thr_high: float = 0.6,
        thr_low: float = 0.3,
        pos_num: int = 16,
        total_num: int = 64,
        neg_num: int = 16,
    ) -> None:
        super().__init__(score_size, search_size, stride, pos_num, total_num, neg_num)
        for name, values in (("ratios", ratios), ("scales", scales)):
            if len(values) == 0 or not all(math.isfinite(v) and v > 0 for v in values):
                raise ValueError(f"{name} must be a non-empty sequence of numbers > 0, got {values!r}")
        if not 0 <= thr_low <= thr_high <= 1:
            raise ValueError(
                f"thresholds must satisfy 0 <= thr_low <= thr_high <= 1, got thr_low={thr_low!r}, "
                f"thr_high={thr_high!r}"
            )
        self.thr_high, self.thr_low = thr_high, thr_low
        shapes = anchor_shapes(stride, ratios, scales)
        self.anchor_num = len(shapes)
        grid_shape = (self.anchor_num, score_size, score_size)
        cx = np.broadcast_to(self._cells[None, None, :], grid_shape)
        cy = np.broadcast_to(self._cells[None, :, None], grid_shape)
        w = np.broadcast_to(shapes[:, 0, None, None], grid_shape)
        h = np.broadcast_to(shapes[:, 1, None, None], grid_shape)
        self._corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        self._areas = w * h
        self.centers = np.stack([cx, cy, w, h]).astype(np.float32)
        self.corners = self._corners.astype(np.float32)

    def overlaps(self, target_corner: Sequence[float]) -> np.ndarray:
        """IoU (A x S x S float32) of every anchor with the target (areas as ``x2 - x1``)."""
        tx1, ty1, tx2, ty2 = _check_corner(target_corner)
        x1, y1, x2, y2 = self._corners
        inter_w = np.maximum(0.0, np.minimum(x2, tx2) - np.maximum(x1, tx1))
        inter_h = np.maximum(0.0, np.minimum(y2, ty2) - np.maximum(y1, ty1))
        inter = inter_w * inter_h
        union = self._areas + (tx2 - tx1) * (ty2 - ty1) - inter
        return (inter / union).astype(np.float32)

    def deltas(self, target_corner: Sequence[float]) -> np.ndarray:
        """Regression targets (4 x A x S x S float32) of every anchor:
        ``((tcx - cx) / w, (tcy - cy) / h, log(tw / w), log(th / h))``."""
        tcx, tcy, tw, th = _corner_to_center(_check_corner(target_corner))
        # float32 arithmetic, as the reference does it (its anchors are float32 arrays)
        cx, cy, w, h = self.centers
        return np.stack([(tcx - cx) / w, (tcy - cy) / h, np.log(tw / w), np.log(th / h)])

    def candidates(self, target_corner: Sequence[float], negative: bool = False) -> Masks:
        """Anchors that may become positives and negatives (boolean A x S x S masks) before
        sampling.

        Positive pair: overlap above ``thr_high`` / below ``thr_low``. Negative pair (search
        crop from another object): no positives; negatives are all anchors of the 7 x 7 cells
        around the cell under the target centre (clipped to the map).
        """
        if not negative:
            overlap = self.overlaps(target_corner)
            return overlap > self.thr_high, overlap < self.thr_low
        tcx, tcy, _, _ = _corner_to_center(_check_corner(target_corner))
        size = self.score_size
        centre = self.search_size // 2
        col = size // 2 + math.ceil((tcx - centre) / self.stride + 0.5)
        row = size // 2 + math.ceil((tcy - centre) / self.stride + 0.5)
        block = np.zeros((self.anchor_num, size, size), dtype=bool)
        block[:, max(0, row - 3):max(0, row + 4), max(0, col - 3):max(0, col + 4)] = True
        return np.zeros_like(block), block

    def __call__(
        self, target_corner: Sequence[float], negative: bool, rng: np.random.Generator
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(cls, delta, delta_weight)`` of one pair.

        ``cls`` (A x S x S int64): 1 for at most ``pos_num`` sampled positives, 0 for at most
        ``total_num - pos_num`` sampled negatives (``neg_num`` on a negative pair), -1 ignored.
        ``delta`` (4 x A x S x S float32): :meth:`deltas` (zeros on a negative pair).
        ``delta_weight`` (A x S x S float32): ``1 / (n_pos + 1e-6)`` on the sampled positives.
        """
        positives, negatives = self.candidates(target_corner, negative)
        cls, chosen = self._labels(positives, negatives, negative, rng)
        delta_weight = np.zeros(cls.shape, dtype=np.float32)
        if negative:
            return cls, np.zeros((4,) + cls.shape, dtype=np.float32), delta_weight
        delta_weight.flat[chosen] = 1.0 / (len(chosen) + 1e-6)
        return cls, self.deltas(target_corner), delta_weight


class PointTargets(_SampledTargets):
    """NanoTrack's ``PointTarget``: classification labels and side distances of every point
    of the score map for one training pair.

    ``points`` (2 x S x S float32) holds each point's ``x, y``; points start at
    ``search_size // 2 - score_size // 2 * stride`` and advance by ``stride`` per cell.
    """

    def __init__(
        self,
        *,
        score_size: int,
        search_size: int = 255,
        stride: int = 16,
        pos_num: int = 16,
        total_num: int = 64,
        neg_num: int = 16,
    ) -> None:
        super().__init__(score_size, search_size, stride, pos_num, total_num, neg_num)
        shape = (score_size, score_size)
        columns, rows = self._cells[None, :], self._cells[:, None]
        self._points = np.stack([np.broadcast_to(columns, shape), np.broadcast_to(rows, shape)])
        self.points = self._points.astype(np.float32)

    def _ellipse(self, target_corner: Sequence[float], fraction: float) -> np.ndarray:
        """``(px - tcx)^2 / (fraction tw)^2 + (py - tcy)^2 / (fraction th)^2`` at every point."""
        tcx, tcy, tw, th = _corner_to_center(_check_corner(target_corner))
        px, py = self._points
        return np.square(px - tcx) / (fraction * tw) ** 2 + np.square(py - tcy) / (fraction * th) ** 2

    def deltas(self, target_corner: Sequence[float]) -> np.ndarray:
        """Distances (4 x S x S float32) from every point to the target's sides:
        ``(px - x1, py - y1, x2 - px, y2 - py)``."""
        x1, y1, x2, y2 = _check_corner(target_corner)
        px, py = self._points
        return np.stack([px - x1, py - y1, x2 - px, y2 - py]).astype(np.float32)

    def candidates(self, target_corner: Sequence[float], negative: bool = False) -> Masks:
        """Points that may become positives and negatives (boolean S x S masks) before sampling.

        Positive pair: inside the ellipse with semi-axes ``w/4, h/4`` around the target centre /
        outside the one with ``w/2, h/2``. Negative pair: no positives; the points inside the
        ``w/4, h/4`` ellipse are the negatives.
        """
        inner = self._ellipse(target_corner, 0.25) < 1
        if negative:
            return np.zeros_like(inner), inner
        return inner, self._ellipse(target_corner, 0.5) > 1

    def __call__(
        self, target_corner: Sequence[float], negative: bool, rng: np.random.Generator
    ) -> Tuple[np.ndarray, np.ndarray]:
        """``(cls, delta)`` of one pair.

        ``cls`` (S x S int64): 1 for at most ``pos_num`` sampled positives, 0 for at most
        ``total_num - pos_num`` sampled negatives (``neg_num`` on a negative pair), -1 ignored.
        ``delta`` (4 x S x S float32): :meth:`deltas` (zeros on a negative pair).
        """
        positives, negatives = self.candidates(target_corner, negative)
        cls, _ = self._labels(positives, negatives, negative, rng)
        if negative:
            return cls, np.zeros((4,) + cls.shape, dtype=np.float32)
        return cls, self.deltas(target_corner)


def _sample(mask: np.ndarray, keep: int, rng: np.random.Generator) -> np.ndarray:
    """Flat indices of ``mask``'s true entries: all of them when at most ``keep``, else
    ``keep`` drawn without replacement."""
    indices = np.flatnonzero(mask)
    if len(indices) <= keep:
        return indices
    return rng.choice(indices, size=keep, replace=False)


def _check_corner(target_corner: Sequence[float]) -> Tuple[float, float, float, float]:
    values = tuple(float(v) for v in np.asarray(target_corner, dtype=np.float64).reshape(-1))
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError(
            f"target_corner must be 4 finite numbers (x1, y1, x2, y2), got {target_corner!r}"
        )
    x1, y1, x2, y2 = values
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"target_corner must have x2 > x1 and y2 > y1, got {target_corner!r}")
    return x1, y1, x2, y2


def _corner_to_center(corner: Tuple[float, float, float, float]) -> Tuple[float, float, float, float]:
    x1, y1, x2, y2 = corner
    return (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1


def _check_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
