"""SiamFC's loop: a pyramid of search scales scored in one batch, on an upsampled map."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import cv2
import numpy as np

from ..config import SiamFCParams
from ..conventions import convention
from ..crop import crop_square, padding_value
from ..geometry import context_size, hanning_window
from .base import NetworkRunner, State, TrackingLoop, channel_means, to_blob


class SiamFCLoop(TrackingLoop):
    """siamfc-pytorch's tracker.

    The raw response (``out_scale * xcorr``) is a logit; ``sigmoid`` of its value at the
    chosen peak is the frame's score.
    """

    params: SiamFCParams

    def __init__(self, params: SiamFCParams, runner: NetworkRunner, input_order: str) -> None:
        super().__init__(params, runner, input_order)
        p = self.params
        half = (p.scale_num - 1) / 2
        self._scales = p.scale_step ** np.linspace(-half, half, p.scale_num)
        self._upscale = p.response_size * p.response_upsample
        window = hanning_window(self._upscale)
        self._window = window / window.sum()
        # Scales other than the middle one pay a penalty before the best scale is chosen.
        self._scale_penalties = np.where(
            np.arange(p.scale_num) == p.scale_num // 2, 1.0, p.scale_penalty
        )
        self._rules = convention(p.convention)

    def start(self, frame: np.ndarray, state: State) -> None:
        p = self.params
        cx, cy, w, h = state
        self._pad = padding_value(channel_means(frame), self._rules)
        self._z_size = context_size(w, h, p.context_amount)
        self._x_size = self._z_size * p.instance_size / p.exemplar_size
        z = crop_square(
            frame, (cx, cy), round(self._z_size), p.exemplar_size, self._pad, self._rules
        )
        self.kernel = self.runner.template(to_blob(z, input_order=self.input_order))
        self._state = state

    def snapshot(self) -> Tuple[Any, ...]:
        return (self._state, self._z_size, self._x_size)

    def restore(self, snapshot: Tuple[Any, ...]) -> None:
        self._state, self._z_size, self._x_size = snapshot

    def place(self, state: State) -> None:
        self._state = state
        self._z_size = context_size(state[2], state[3], self.params.context_amount)
        self._x_size = self._z_size * self.params.instance_size / self.params.exemplar_size

    def search_side(self) -> float:
        return self._x_size

    def search(self, frame: np.ndarray) -> List[np.ndarray]:
        p = self.params
        cx, cy = self._state[:2]
        return [
            crop_square(
                frame, (cx, cy), round(self._x_size * f), p.instance_size, self._pad, self._rules
            )
            for f in self._scales
        ]

    def locate(self, frame: np.ndarray, outputs: Dict[str, np.ndarray]) -> Tuple[State, float]:
        p = self.params
        cx, cy, w, h = self._state
        responses = outputs["response"][:, 0]
        if not np.isfinite(responses).all():
            return self._state, 0.0
        upsampled = np.stack([
            cv2.resize(r, (self._upscale, self._upscale), interpolation=cv2.INTER_CUBIC)
            for r in responses
        ])
        peaks = upsampled.reshape(len(self._scales), -1).max(axis=1) * self._scale_penalties
        scale_id = int(np.argmax(peaks))
        # Normalised in float32 as the reference does: the peak's margin over its neighbour
        # is often below 1e-8, so the precision decides which cell wins.
        response = upsampled[scale_id].copy()
        response -= response.min()
        response /= response.sum() + 1e-16
        response = (1 - p.window_influence) * response + p.window_influence * self._window
        row, col = np.unravel_index(int(np.argmax(response)), response.shape)
        score = float(1.0 / (1.0 + np.exp(-float(upsampled[scale_id, row, col]))))
        factor = self._scales[scale_id]
        pixels_per_cell = p.total_stride / p.response_upsample * self._x_size * factor / p.instance_size
        center_cell = (self._upscale - 1) / 2
        bias_x, bias_y = p.center_bias
        scale_change = self._bounded_scale_change(
            (1 - p.scale_lr) + p.scale_lr * factor, w, h, frame.shape[1], frame.shape[0]
        )
        self._z_size *= scale_change
        self._x_size *= scale_change
        self._state = (
            min(max(cx + (col - center_cell) * pixels_per_cell - bias_x, 0.0), frame.shape[1]),
            min(max(cy + (row - center_cell) * pixels_per_cell - bias_y, 0.0), frame.shape[0]),
            w * scale_change,
            h * scale_change,
        )
        return self._state, score

    def _bounded_scale_change(
        self, change: float, w: float, h: float, frame_w: int, frame_h: int
    ) -> float:
        """``change`` limited so the target neither shrinks below ``min_size`` nor grows past
        the frame (siamfc-pytorch has no such bound: a lost target can blow its search region
        up, or shrink it to nothing, frame after frame). One factor for both sides keeps the
        aspect ratio and the exemplar and search sizes in step, as the reference does."""
        smallest = min(1.0, self.params.min_size / min(w, h))
        largest = max(1.0, min(frame_w / w, frame_h / h))
        return min(max(change, smallest), largest)
