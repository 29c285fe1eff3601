"""Bounded work for every accepted input (issue 14.6): memory O(frame + crop), time within a
small factor of a typical update, tiny frames, and box values too large for a float."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

from tracker.config import NanoTrackParams
from tracker.geometry import box_to_center, center_to_box
from tracker.inputs import as_box
from tracker.loops.proposals import NanoTrackLoop

MB = 1 << 20


class _StillRunner:
    """A network that scores the centre point highest and predicts the current crop box."""

    def __init__(self, score_size: int = 16) -> None:
        self.score_size = score_size

    def template(self, z: np.ndarray) -> np.ndarray:
        return z.mean(axis=(2, 3))

    def track(self, kernel: np.ndarray, x: np.ndarray) -> dict:
        n = self.score_size
        cls = np.zeros((1, 2, n, n), np.float32)
        cls[0, 1, n // 2, n // 2] = 4.0
        loc = np.full((1, 4, n, n), 40.0, np.float32)
        return {"cls": cls, "loc": loc}


def _track(frame: np.ndarray, box) -> tuple:
    """One init and one update of the NanoTrack loop on ``frame``; the corner box."""
    loop = NanoTrackLoop(NanoTrackParams(), _StillRunner(), "bgr")
    loop.start(frame, box_to_center(as_box(box, frame.shape)))
    state, _ = loop.step(frame)
    return center_to_box(*state)


def _peak_bytes(function, *args) -> int:
    tracemalloc.start()
    try:
        function(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_frame_wide_box_on_a_one_row_frame_needs_memory_of_the_frame_only():
    frame = np.full((1, 100000, 3), 77, np.uint8)
    peak = _peak_bytes(_track, frame, (0, 0, 100000, 1))
    assert peak < 50 * MB, f"peak {peak / MB:.1f} MB"


def test_a_huge_box_costs_about_as_much_as_a_typical_one():
    frame = np.random.default_rng(0).integers(0, 256, (6000, 8000, 3), dtype=np.uint8)
    big, typical = (1000, 10, 5969, 5969), (4000, 3000, 100, 100)

    def median_seconds(box) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            _track(frame, box)
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    typical_s, big_s = median_seconds(typical), median_seconds(big)
    assert big_s <= 3 * typical_s + 0.01, f"{big_s:.4f} s vs typical {typical_s:.4f} s"
    assert _peak_bytes(_track, frame, big) < 50 * MB


@pytest.mark.parametrize("height, width", [(1, 1), (2, 2), (3, 5)])
@pytest.mark.parametrize("corner", ["whole", "top-left", "bottom-right"])
def test_tiny_frames_give_boxes_inside_the_frame(height, width, corner):
    """``min_size`` (10) yields to frames smaller than it: whatever the start box, the box
    spans the frame (the only box of at least the frame's size inside it)."""
    frame = np.full((height, width, 3), 128, np.uint8)
    box = {"whole": (0, 0, width, height), "top-left": (0, 0, 1, 1),
           "bottom-right": (width - 1, height - 1, 1, 1)}[corner]
    x, y, w, h = _track(frame, box)
    assert (x, y, w, h) == (0.0, 0.0, width, height)
    assert isinstance(w, float) and isinstance(h, float)


def test_a_thin_frame_keeps_the_box_inside_along_its_short_side_only():
    frame = np.full((4, 200, 3), 128, np.uint8)
    x, y, w, h = _track(frame, (150, 1, 20, 2))
    assert (y, h) == (0.0, 4.0)
    assert 140 <= x and x + w <= 180 and w >= 10


def test_a_box_value_too_large_for_a_float_is_named():
    with pytest.raises(ValueError, match=r"box values must fit in a float"):
        as_box((0, 0, 10 ** 400, 5), (10, 10, 3))
