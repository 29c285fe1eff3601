"""Tracking loops that score a dense set of candidate boxes: SiamRPN(++) and NanoTrack.

Both follow pysot's recipe: crop a context region around the last position, score every
candidate, penalise changes of scale and aspect ratio, mix in a cosine window, take the
best candidate, and move the size towards it with a confidence-weighted rate. They differ
only in how candidates are decoded from the head outputs (anchors vs points).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Dict, List, Tuple

import numpy as np

from ..config import NanoTrackParams, SiamRPNParams
from ..conventions import convention
from ..crop import crop_square, padding_value
from ..errors import TrackerError
from ..geometry import anchor_shapes, clip_state, context_size, hanning_window, shape_penalty, smooth_size
from .base import NetworkRunner, State, TrackingLoop, channel_means, to_blob

Candidates = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def foreground_probability(background: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """Second entry of a two-way softmax, computed without overflow (float64)."""
    fg = foreground.astype(np.float64)
    return np.exp(fg - np.logaddexp(background.astype(np.float64), fg))


class ProposalLoop(TrackingLoop):
    """Shared loop; subclasses decode candidates and define the window per search size."""

    params: SiamRPNParams | NanoTrackParams

    def __init__(
        self, params: SiamRPNParams | NanoTrackParams, runner: NetworkRunner, input_order: str
    ) -> None:
        super().__init__(params, runner, input_order)
        self._rules = convention(self.params.convention)
        self._grids: Dict[int, Tuple[np.ndarray, ...]] = {}

    @abstractmethod
    def _grid(self, instance_size: int) -> Tuple[np.ndarray, ...]:
        """Window and decoding constants for one search size (cached per size)."""

    @abstractmethod
    def _decode(self, outputs: Dict[str, np.ndarray], grid: Tuple[np.ndarray, ...]) -> Candidates:
        """Scores and candidate boxes (cx, cy, w, h relative to the crop centre, crop px)."""

    def _instance_size(self, frame: np.ndarray, w: float, h: float) -> int:
        return self.params.instance_size

    def start(self, frame: np.ndarray, state: State) -> None:
        p = self.params
        cx, cy, w, h = state
        self._pad = padding_value(channel_means(frame), self._rules)
        self._search = self._instance_size(frame, w, h)
        side = round(context_size(w, h, p.context_amount))
        z = crop_square(frame, (cx, cy), side, p.exemplar_size, self._pad, self._rules)
        self.kernel = self.runner.template(to_blob(z, input_order=self.input_order))
        self._state = state

    def search_side(self) -> float:
        p = self.params
        _, _, w, h = self._state
        return context_size(w, h, p.context_amount) * self._search / p.exemplar_size

    def search(self, frame: np.ndarray) -> List[np.ndarray]:
        cx, cy = self._state[:2]
        side = round(self.search_side())
        return [crop_square(frame, (cx, cy), side, self._search, self._pad, self._rules)]

    def locate(self, frame: np.ndarray, outputs: Dict[str, np.ndarray]) -> Tuple[State, float]:
        p = self.params
        cx, cy, w, h = self._state
        scale = p.exemplar_size / context_size(w, h, p.context_amount)
        grid = self._grids.get(self._search)
        if grid is None:
            grid = self._grids[self._search] = self._grid(self._search)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            score, dx, dy, cand_w, cand_h = self._decode(outputs, grid)
            penalty = shape_penalty(cand_w, cand_h, w * scale, h * scale, p.penalty_k)
            pscore = penalty * score * (1 - p.window_influence) + grid[0] * p.window_influence
        # Overflowing or NaN outputs (a broken or untrained network) must not become the box.
        usable = np.isfinite(pscore) & np.isfinite(dx) & np.isfinite(dy)
        usable &= np.isfinite(cand_w) & np.isfinite(cand_h) & (cand_w > 0) & (cand_h > 0)
        if not usable.any():
            return self._state, 0.0
        best = int(np.argmax(np.where(usable, pscore, -np.inf)))
        rate = float(penalty[best] * score[best] * p.lr)
        new_w, new_h = smooth_size(w, h, cand_w[best] / scale, cand_h[best] / scale, rate)
        frame_h, frame_w = frame.shape[:2]
        bias_x, bias_y = p.center_bias
        self._state = clip_state(
            cx + dx[best] / scale - bias_x, cy + dy[best] / scale - bias_y, new_w, new_h,
            frame_w, frame_h, p.min_size, self._rules.center_offset,
        )
        return self._state, float(score[best])


class SiamRPNLoop(ProposalLoop):
    """Anchor-based decoding (DaSiamRPN up-channel, pysot depthwise / multi-layer RPN)."""

    params: SiamRPNParams

    def _instance_size(self, frame: np.ndarray, w: float, h: float) -> int:
        p = self.params
        if p.adaptive_instance_size is not None:
            if w * h / float(frame.shape[0] * frame.shape[1]) < p.adaptive_area_ratio:
                return p.adaptive_instance_size
        return p.instance_size

    def _grid(self, instance_size: int) -> Tuple[np.ndarray, ...]:
        p = self.params
        size = p.score_size(instance_size)
        stride = p.anchor_stride
        shapes = anchor_shapes(stride, p.anchor_ratios, p.anchor_scales)
        offsets = (np.arange(size) - self._rules.grid_half(size)) * stride
        grid_x = np.tile(np.tile(offsets, size), len(shapes))
        grid_y = np.tile(np.repeat(offsets, size), len(shapes))
        anchor_w = np.repeat(shapes[:, 0], size * size)
        anchor_h = np.repeat(shapes[:, 1], size * size)
        window = np.tile(hanning_window(size).ravel(), len(shapes))
        return window, grid_x, grid_y, anchor_w, anchor_h

    def _decode(self, outputs: Dict[str, np.ndarray], grid: Tuple[np.ndarray, ...]) -> Candidates:
        _, grid_x, grid_y, anchor_w, anchor_h = grid
        cls, loc = outputs["cls"][0], outputs["loc"][0]
        anchors = cls.shape[0] // 2
        if cls.size != 2 * grid_x.size or loc.size != 4 * grid_x.size:
            raise TrackerError(
                f"network output cls {cls.shape} / loc {loc.shape} does not match "
                f"{grid_x.size} anchors of the configured search size"
            )
        score = foreground_probability(cls[:anchors].ravel(), cls[anchors:].ravel())
        delta = loc.reshape(4, -1).astype(np.float64)
        return (
            score,
            delta[0] * anchor_w + grid_x,
            delta[1] * anchor_h + grid_y,
            np.exp(delta[2]) * anchor_w,
            np.exp(delta[3]) * anchor_h,
        )


class NanoTrackLoop(ProposalLoop):
    """Anchor-free decoding: each map point predicts distances to the four box sides."""

    params: NanoTrackParams

    def _grid(self, instance_size: int) -> Tuple[np.ndarray, ...]:
        size = self.params.score_size
        offsets = (np.arange(size) - size // 2) * float(self.params.point_stride)
        return hanning_window(size).ravel(), np.tile(offsets, size), np.repeat(offsets, size)

    def _decode(self, outputs: Dict[str, np.ndarray], grid: Tuple[np.ndarray, ...]) -> Candidates:
        _, point_x, point_y = grid
        cls, loc = outputs["cls"][0], outputs["loc"][0]
        if cls.shape[1:] != loc.shape[1:] or cls[0].size != point_x.size:
            raise TrackerError(
                f"network output cls {cls.shape} / loc {loc.shape} does not match the "
                f"configured {self.params.score_size}x{self.params.score_size} score map"
            )
        score = foreground_probability(cls[0].ravel(), cls[1].ravel())
        left, top, right, bottom = loc.reshape(4, -1).astype(np.float64)
        x1, y1 = point_x - left, point_y - top
        x2, y2 = point_x + right, point_y + bottom
        return score, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
