"""Long-term tracking (LongTermLoop) per family, with a stand-in network that sees a marker.

``MarkerRunner`` scores a white square on a black frame: in every search crop it finds the
square and answers with the head outputs of its family that put a confident box on it, and
with a flat, hopeless score map when the crop does not show it. That makes every family's
holding and re-detection testable without trained weights.
"""

from __future__ import annotations

import numpy as np
import pytest

import tracker
from tracker.api import Tracker
from tracker.config import TrackingParams
from tracker.geometry import anchor_shapes
from tracker.multi import MultiTracker

FAMILY_MODELS = ["siamfc-alexnet", "siamrpnpp-alex", "dasiamrpn-otb", "nanotrack-v2"]
FRAME_SHAPE = (240, 320)
MARKER = 16
START = (60.0, 60.0)
FAR = (260.0, 190.0)
LOGIT = 8.0


def marker_frame(corner=None) -> np.ndarray:
    frame = np.zeros(FRAME_SHAPE + (3,), np.uint8)
    if corner is not None:
        x, y = int(corner[0]), int(corner[1])
        frame[y:y + MARKER, x:x + MARKER] = 255
    return frame


class MarkerRunner:
    """Head outputs that locate the white marker in each search crop (see module doc)."""

    def __init__(self, config):
        self.family = config.family
        self.p = config.tracking
        self.calls = []

    def template(self, z):
        return ()

    def stack(self, kernels, crops):
        return ()

    def track(self, kernel, x):
        self.calls.append(len(x))
        return {
            "siamfc": self._siamfc, "siamrpn": self._siamrpn, "nanotrack": self._nanotrack,
        }[self.family](x)

    @staticmethod
    def _marker(crop):
        """The marker's box (x1, y1, x2, y2) relative to the crop centre, or None."""
        ys, xs = np.nonzero(crop.min(axis=0) > 200)
        if len(xs) == 0:
            return None
        centre = (crop.shape[-1] - 1) / 2
        return xs.min() - centre, ys.min() - centre, xs.max() + 1 - centre, ys.max() + 1 - centre

    @staticmethod
    def _cell(offset, size, stride):
        return int(np.clip(round(offset / stride + size // 2), 0, size - 1))

    def _siamfc(self, x):
        size = self.p.response_size
        response = np.full((len(x), 1, size, size), -LOGIT, np.float32)
        for n, crop in enumerate(x):
            box = self._marker(crop)
            if box is not None:
                stride = self.p.total_stride
                row = self._cell((box[1] + box[3]) / 2, size, stride)
                col = self._cell((box[0] + box[2]) / 2, size, stride)
                response[n, 0, row, col] = LOGIT
        return {"response": response}

    def _siamrpn(self, x):
        size = self.p.score_size(x.shape[-1])
        stride = self.p.anchor_stride
        shapes = anchor_shapes(stride, self.p.anchor_ratios, self.p.anchor_scales)
        anchors = len(shapes)
        cls = np.zeros((len(x), 2 * anchors, size, size), np.float32)
        cls[:, anchors:] = -LOGIT
        loc = np.zeros((len(x), 4 * anchors, size, size), np.float32)
        offsets = (np.arange(size) - size // 2) * stride
        for n, crop in enumerate(x):
            box = self._marker(crop)
            if box is None:
                continue
            mx, my = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            row, col = self._cell(my, size, stride), self._cell(mx, size, stride)
            for a, (anchor_w, anchor_h) in enumerate(shapes):
                cls[n, anchors + a, row, col] = LOGIT
                loc[n, a] = (mx - offsets[None, :]) / anchor_w
                loc[n, anchors + a] = (my - offsets[:, None]) / anchor_h
                loc[n, 2 * anchors + a] = np.log((box[2] - box[0]) / anchor_w)
                loc[n, 3 * anchors + a] = np.log((box[3] - box[1]) / anchor_h)
        return {"cls": cls, "loc": loc}

    def _nanotrack(self, x):
        size, stride = self.p.score_size, self.p.point_stride
        cls = np.zeros((len(x), 2, size, size), np.float32)
        cls[:, 1] = -LOGIT
        loc = np.zeros((len(x), 4, size, size), np.float32)
        points = (np.arange(size) - size // 2) * float(stride)
        for n, crop in enumerate(x):
            box = self._marker(crop)
            if box is None:
                continue
            row = self._cell((box[1] + box[3]) / 2, size, stride)
            col = self._cell((box[0] + box[2]) / 2, size, stride)
            cls[n, 1, row, col] = LOGIT
            loc[n, 0] = points[None, :] - box[0]
            loc[n, 1] = points[:, None] - box[1]
            loc[n, 2] = box[2] - points[None, :]
            loc[n, 3] = box[3] - points[:, None]
        return {"cls": cls, "loc": loc}


def iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def long_term_tracker(name, **overrides):
    config = tracker.get_config(name).with_tracking(long_term=True, **overrides)
    runner = MarkerRunner(config)
    return Tracker(config, runner), runner


@pytest.mark.parametrize("name", FAMILY_MODELS)
def test_a_vanished_target_is_held_then_searched_for_and_found_far_away(name):
    trk, runner = long_term_tracker(name)
    p = trk.config.tracking
    trk.init(marker_frame(START), START + (MARKER, MARKER))
    tracked = [trk.update(marker_frame(START)) for _ in range(5)]
    assert all(not r.lost and not r.searching and iou(r.box, START + (MARKER, MARKER)) > 0.7
               for r in tracked)
    confident = tracked[-1].box

    absent = [trk.update(marker_frame()) for _ in range(p.redetect_after + 5)]
    # The box neither drifts nor grows while the target is gone.
    assert all(r.box == confident and r.lost for r in absent)
    assert [r.searching for r in absent] == [False] * (p.redetect_after - 1) + [True] * 6
    # While searching, one network call per frame scores the held centre at each scale and
    # the next tiles of the frame (SiamFC: its scale pyramid for each).
    crops_per_search = p.scale_num if trk.config.family == "siamfc" else 1
    assert runner.calls[-5:] == [(len(p.redetect_scales) + p.redetect_tiles) * crops_per_search] * 5

    far_box = FAR + (MARKER, MARKER)
    found = None
    for frame_index in range(80):
        result = trk.update(marker_frame(FAR))
        if not result.searching:
            found = frame_index
            break
        assert result.box == confident
    assert found is not None, "the marker was not re-detected within 80 frames"
    assert iou(result.box, far_box) > 0.5 and not result.lost and result.score >= p.redetect_threshold
    follow = [trk.update(marker_frame(FAR)) for _ in range(3)]
    assert all(iou(r.box, far_box) > 0.5 and not r.searching for r in follow)
    assert runner.calls[-3:] == [crops_per_search] * 3


@pytest.mark.parametrize("name", FAMILY_MODELS)
def test_a_target_that_returns_nearby_is_taken_back_by_the_local_search(name):
    trk, _ = long_term_tracker(name, redetect_tiles=0)
    trk.init(marker_frame(START), START + (MARKER, MARKER))
    trk.update(marker_frame(START))
    for _ in range(trk.config.tracking.redetect_after):
        trk.update(marker_frame())
    moved = (START[0] + 6, START[1] - 4)
    result = trk.update(marker_frame(moved))
    assert not result.searching and iou(result.box, moved + (MARKER, MARKER)) > 0.5


def test_without_long_term_the_box_follows_whatever_scores_best():
    """The short-term loop keeps following its best candidate: it has no searching state."""
    config = tracker.get_config("nanotrack-v2").with_tracking(long_term=False)
    trk = Tracker(config, MarkerRunner(config))
    trk.init(marker_frame(START), START + (MARKER, MARKER))
    results = [trk.update(marker_frame()) for _ in range(40)]
    assert not any(r.searching for r in results) and all(r.lost for r in results)


def test_a_moderately_confident_frame_moves_the_held_centre_but_not_the_size():
    trk, _ = long_term_tracker(
        "nanotrack-v2", hold_threshold=0.99995, move_threshold=0.5, redetect_threshold=0.99995
    )
    trk.init(marker_frame(START), START + (16, 16))
    # The marker (16 px) under a 24 px box: the candidate scores 1 / (1 + e^-8) = 0.99966, below
    # the hold threshold, above the move threshold.
    moved = (START[0] + 5, START[1] + 3)
    result = trk.update(marker_frame(moved))
    x, y, w, h = result.box
    assert (w, h) == (16.0, 16.0)
    assert (x, y) == pytest.approx(moved, abs=1.5) and not result.searching


def test_the_multi_tracker_runs_long_term_targets_like_independent_trackers():
    config = tracker.get_config("nanotrack-v2").with_tracking(long_term=True)
    multi = MultiTracker(config, MarkerRunner(config))
    singles = [Tracker(config, MarkerRunner(config)) for _ in range(2)]
    other = (200.0, 40.0)
    frames = [marker_frame(START)] * 3 + [marker_frame()] * 30 + [marker_frame(FAR)] * 40
    boxes = [START + (MARKER, MARKER), other + (MARKER, MARKER)]
    ids = [multi.add(frames[0], box) for box in boxes]
    for single, box in zip(singles, boxes):
        single.init(frames[0], box)
    seen_searching = False
    for frame in frames[1:]:
        batched = multi.update(frame)
        for target_id, single in zip(ids, singles):
            assert batched[target_id] == single.update(frame)
        seen_searching |= any(r.searching for r in batched.values())
    assert seen_searching and len(multi._kernels) <= 16


@pytest.mark.parametrize("overrides, message", [
    ({"long_term": 1}, "long_term must be True or False, got 1"),
    ({"long_term": True, "redetect_threshold": 0.4}, "redetect_threshold must be at least hold_threshold"),
    ({"long_term": True, "hold_threshold": 0.9, "redetect_threshold": 0.8}, "got 0.8 and 0.9"),
    ({"redetect_scales": ()}, "redetect_scales must be a non-empty sequence"),
    ({"redetect_after": 2.5}, "redetect_after must be an int >= 0"),
    ({"redetect_spacing": 0.0}, r"redetect_spacing must be in \(0, 1\]"),
    ({"hold_threshold": 1.5}, r"hold_threshold must be in \[0, 1\]"),
])
def test_long_term_settings_are_checked(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrackingParams(**overrides)


def test_only_nanotrack_v2_tracks_long_term_by_default():
    on = {name for name in tracker.list_models() if tracker.get_config(name).tracking.long_term}
    assert on == {"nanotrack-v2"}
    params = tracker.get_config("nanotrack-v2").tracking
    settings = (params.hold_below, params.move_threshold, params.redetect_after,
                params.redetect_threshold)
    assert settings == (0.75, 0.3, 30, 0.97)
