"""Tracking loops with stand-in networks: robustness to broken outputs, no shared data needed."""

from __future__ import annotations

import numpy as np
import pytest

import tracker
from tracker.api import Tracker

FRAME = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)


class BrokenRunner:
    """Returns outputs full of ``value`` with the shapes the model's head produces."""

    def __init__(self, config, value):
        p = config.tracking
        if config.family == "siamfc":
            self.shapes = {"response": (p.scale_num, 1, p.response_size, p.response_size)}
        elif config.family == "nanotrack":
            self.shapes = {"cls": (1, 2, p.score_size, p.score_size),
                           "loc": (1, 4, p.score_size, p.score_size)}
        else:
            size = p.score_size()
            self.shapes = {"cls": (1, 10, size, size), "loc": (1, 20, size, size)}
        self.value = value

    def template(self, z):
        return ()

    def track(self, kernel, x):
        return {k: np.full(s, self.value, np.float32) for k, s in self.shapes.items()}


@pytest.mark.parametrize("name", ["siamfc-alexnet", "siamrpnpp-alex", "dasiamrpn-otb", "nanotrack-v3"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e30])
def test_non_finite_outputs_keep_the_last_box_and_report_lost(name, value):
    config = tracker.get_config(name)
    trk = Tracker(config, BrokenRunner(config, value))
    trk.init(FRAME, (50.0, 40.0, 30.0, 20.0))
    for _ in range(3):
        result = trk.update(FRAME)
        assert np.isfinite(result.box).all()
        assert 0.0 <= result.score <= 1.0
    if not np.isfinite(value):
        assert result.box == pytest.approx((50.0, 40.0, 30.0, 20.0)) and result.lost


def test_loop_rejects_outputs_of_the_wrong_size():
    config = tracker.get_config("nanotrack-v2")
    runner = BrokenRunner(tracker.get_config("nanotrack-v3"), 0.0)
    trk = Tracker(config, runner)
    trk.init(FRAME, (50.0, 40.0, 30.0, 20.0))
    with pytest.raises(tracker.TrackerError, match="does not match the configured 16x16"):
        trk.update(FRAME)


class CornerRunner:
    """SiamFC stand-in whose response always peaks in the bottom-right corner of one scale."""

    def __init__(self, config, scale_id):
        p = config.tracking
        self.shape = (p.scale_num, 1, p.response_size, p.response_size)
        self.scale_id = scale_id

    def template(self, z):
        return ()

    def track(self, kernel, x):
        response = np.zeros(self.shape, np.float32)
        response[self.scale_id, 0, -1, -1] = 10.0
        return {"response": response}


@pytest.mark.parametrize("scale_id, start_size, bound", [(2, 30.0, 120.0), (0, 30.0, 10.0)])
def test_siamfc_keeps_a_runaway_target_inside_the_frame(scale_id, start_size, bound):
    """A target that keeps moving to a corner and growing (or shrinking) stops at the frame's
    border and size, or at ``min_size``, instead of leaving the frame or vanishing."""
    config = tracker.get_config("siamfc-alexnet")
    trk = Tracker(config, CornerRunner(config, scale_id))
    trk.init(FRAME, (50.0, 40.0, start_size, start_size))
    results = [trk.update(FRAME) for _ in range(150)]
    x, y, w, h = results[-1].box
    assert (x + w / 2, y + h / 2) == pytest.approx((160.5, 120.5))  # centre clipped to W, H
    assert w == h == pytest.approx(bound)
    assert all(10.0 - 1e-9 <= r.box[2] <= 120.0 + 1e-9 for r in results)
