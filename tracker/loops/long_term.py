"""Long-term tracking around any family's loop: hold a lost target's box, then re-detect it.

A short-term Siamese loop follows its best candidate whatever that candidate scores; once the
target is gone it tracks background and the box drifts and swells. :class:`LongTermLoop` wraps
a family's loop and changes only what happens on low-scoring frames:

* tracking: a frame scoring at least ``hold_threshold`` (``None``: ``lost_threshold``) is
  taken as the family's loop takes it and becomes the last confident state. Below it the state goes back to where it was before
  the frame (the size never changes), its centre following the frame's best candidate only
  when that scores at least ``move_threshold``.
* searching, after ``redetect_after`` low frames in a row: every frame scores, in one network
  call against the first frame's kernel, crops at the held centre at the held size times each
  of ``redetect_scales`` and ``redetect_tiles`` crops tiling the frame (the tiles nearest the
  held centre first, going round the frame over the following frames). The best candidate is
  taken back only when it scores at least ``redetect_threshold`` (above ``hold_threshold``:
  hysteresis); until then the state is held.

A searching frame therefore costs one network call on ``len(redetect_scales) +
redetect_tiles`` search crops (times a family's own crops per search, SiamFC's scale
pyramid), whatever the frame size.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .base import State, TrackingLoop

_Snapshot = Tuple[Any, ...]


class LongTermLoop(TrackingLoop):
    """``inner``'s loop with a held box while the target is lost and re-detection."""

    def __init__(self, inner: TrackingLoop) -> None:
        super().__init__(inner.params, inner.runner, inner.input_order)
        self.inner = inner
        self._searching = False
        self._low_frames = 0
        self._confident: _Snapshot = ()
        self._before: _Snapshot = ()
        self._candidates: List[Tuple[State, int]] = []
        self._tiles: Optional[np.ndarray] = None
        self._tile_cursor = 0

    @property
    def searching(self) -> bool:  # type: ignore[override]
        """True while the target is lost and the loop re-detects it."""
        return self._searching

    @property
    def state(self) -> State:
        return self.inner.state

    def snapshot(self) -> _Snapshot:
        return self.inner.snapshot()

    def restore(self, snapshot: _Snapshot) -> None:
        self.inner.restore(snapshot)

    def place(self, state: State) -> None:
        self.inner.place(state)

    def search_side(self) -> float:
        return self.inner.search_side()

    def start(self, frame: np.ndarray, state: State) -> None:
        self.inner.start(frame, state)
        self.kernel = self.inner.kernel
        self._confident = self.inner.snapshot()
        self._searching = False
        self._low_frames = 0
        self._tiles = None

    def search(self, frame: np.ndarray) -> List[np.ndarray]:
        self._before = self.inner.snapshot()
        if not self._searching:
            return self.inner.search(frame)
        crops: List[np.ndarray] = []
        self._candidates = []
        for candidate in self._redetection_states(frame):
            self.inner.place(candidate)
            patches = self.inner.search(frame)
            crops.extend(patches)
            self._candidates.append((candidate, len(patches)))
        self.inner.restore(self._before)
        return crops

    def locate(self, frame: np.ndarray, outputs: Dict[str, np.ndarray]) -> Tuple[State, float]:
        if self._searching:
            return self._redetect(frame, outputs)
        state, score = self.inner.locate(frame, outputs)
        if score >= self.params.hold_below:
            self._confident = self.inner.snapshot()
            self._low_frames = 0
            return state, score
        self.inner.restore(self._before)
        if score >= self.params.move_threshold:
            _, _, w, h = self.inner.state
            self.inner.place((state[0], state[1], w, h))
        self._low_frames += 1
        if self._low_frames >= self.params.redetect_after:
            self._searching = True
            self._tiles = None
        return self.inner.state, score

    def _redetect(self, frame: np.ndarray, outputs: Dict[str, np.ndarray]) -> Tuple[State, float]:
        best: Optional[Tuple[_Snapshot, float]] = None
        start = 0
        for candidate, count in self._candidates:
            self.inner.place(candidate)
            part = {name: value[start:start + count] for name, value in outputs.items()}
            start += count
            _, score = self.inner.locate(frame, part)
            if best is None or score > best[1]:
                best = (self.inner.snapshot(), score)
        assert best is not None
        found, score = best
        if score >= self.params.redetect_threshold:
            self.inner.restore(found)
            self._confident = found
            self._searching = False
            self._low_frames = 0
        else:
            self.inner.restore(self._before)
        return self.inner.state, score

    def _redetection_states(self, frame: np.ndarray) -> List[State]:
        """This frame's candidate states: the held centre at each re-detection scale, then
        the next tiles of the frame."""
        p = self.params
        cx, cy, w, h = self.inner.state
        states = [(cx, cy, w * scale, h * scale) for scale in p.redetect_scales]
        if p.redetect_tiles:
            if self._tiles is None:
                self._tiles = self._tile_centres(frame, cx, cy)
                self._tile_cursor = 0
            picks = (self._tile_cursor + np.arange(p.redetect_tiles)) % len(self._tiles)
            self._tile_cursor = int(picks[-1] + 1) % len(self._tiles)
            states.extend((float(x), float(y), w, h) for x, y in self._tiles[picks])
        return states

    def _tile_centres(self, frame: np.ndarray, cx: float, cy: float) -> np.ndarray:
        """Centres of search crops at the held size covering ``frame``, nearest to
        ``(cx, cy)`` first."""
        side = self.inner.search_side()
        spacing = max(1.0, self.params.redetect_spacing * side)
        axes = [_tile_axis(length, side, spacing) for length in (frame.shape[1], frame.shape[0])]
        xs, ys = np.meshgrid(*axes)
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        order = np.argsort(np.hypot(centres[:, 0] - cx, centres[:, 1] - cy), kind="stable")
        return centres[order]


def _tile_axis(length: int, side: float, spacing: float) -> np.ndarray:
    """Crop centres along one frame axis of ``length`` pixels, ``spacing`` apart, the first
    and last crop flush with the frame's edges (one centred crop when a crop covers it)."""
    if side >= length:
        return np.array([length / 2.0])
    count = math.ceil((length - side) / spacing) + 1
    return np.linspace(side / 2.0, length - side / 2.0, count)
