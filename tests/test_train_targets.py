"""Training targets against the references' own numbers (../shared/fixtures/training):
siamfc-pytorch label maps, pysot's anchor targets and _get_bbox, NanoTrack's point targets."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import shared_path
from tracker.train.targets import AnchorTargets, PointTargets, pysot_bbox, siamfc_labels

TARGETS = range(6)
NEGATIVES = range(3)


def _fixture(name: str):
    return np.load(shared_path("fixtures", "training", f"{name}.npz"))


@pytest.fixture(scope="module")
def siamfc():
    return _fixture("siamfc")


@pytest.fixture(scope="module")
def pysot():
    return _fixture("pysot")


@pytest.fixture(scope="module")
def nano():
    return _fixture("nanotrack")


def _assert_sample(cls: np.ndarray, label: int, candidates: np.ndarray, size: int) -> None:
    chosen = cls == label
    assert chosen.sum() == size
    assert not (chosen & ~candidates).any(), f"label {label} given outside its candidates"


# SiamFC ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("key, size, r_pos, r_neg", [
    ("labels_l15", 15, 16, 0), ("labels_l17", 17, 16, 0),
    ("labels_l15_rneg32", 15, 16, 32), ("labels_l15_rpos8", 15, 8, 0),
])
def test_siamfc_labels_match_reference(siamfc, key, size, r_pos, r_neg):
    labels = siamfc_labels(size, r_pos=r_pos, r_neg=r_neg, total_stride=8)
    assert labels.dtype == np.float32 and labels.shape == (size, size)
    for item in siamfc[key]:
        np.testing.assert_array_equal(labels, item[0])


def test_siamfc_labels_values():
    labels = siamfc_labels(15, r_pos=16, r_neg=32)
    assert labels.sum() == 13 + 0.5 * 12  # 13 cells within distance 2, 12 at distance 3
    assert labels[7, 7] == 1 and labels[7, 10] == 0.5 and labels[7, 11] == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"response_size": 0}, "response_size must be an integer >= 1"),
    ({"response_size": 15, "r_pos": -1}, "r_pos must be a finite number >= 0"),
    ({"response_size": 15, "total_stride": 0}, "total_stride must be an integer >= 1"),
])
def test_siamfc_labels_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        siamfc_labels(**kwargs)


# pysot ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=[17, 25], ids=["s17", "s25"])
def anchors(request):
    return AnchorTargets(score_size=request.param)


def test_anchor_grids_match_reference(pysot, anchors):
    prefix = f"s{anchors.score_size}"
    assert anchors.anchor_num == 5
    np.testing.assert_array_equal(anchors.corners, pysot[f"{prefix}_anchors_corner"])
    np.testing.assert_array_equal(anchors.centers, pysot[f"{prefix}_anchors_center"])
    assert anchors.corners.dtype == anchors.centers.dtype == np.float32


@pytest.mark.parametrize("i", TARGETS)
def test_anchor_overlaps_candidates_deltas_match_reference(pysot, anchors, i):
    key = f"s{anchors.score_size}_t{i}"
    target = pysot[f"{key}_target"]
    np.testing.assert_allclose(anchors.overlaps(target), pysot[f"{key}_overlap"], rtol=1e-6, atol=1e-7)
    positives, negatives = anchors.candidates(target)
    np.testing.assert_array_equal(positives, pysot[f"{key}_pos_candidates"])
    np.testing.assert_array_equal(negatives, pysot[f"{key}_neg_candidates"])
    np.testing.assert_allclose(anchors.deltas(target), pysot[f"{key}_delta"], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("i", TARGETS)
def test_anchor_sampling_keeps_reference_sizes(pysot, anchors, i):
    key = f"s{anchors.score_size}_t{i}"
    positives, negatives = pysot[f"{key}_pos_candidates"], pysot[f"{key}_neg_candidates"]
    n_pos = min(int(positives.sum()), 16)
    n_neg = min(int(negatives.sum()), 48)
    reference = pysot[f"{key}_cls_seeded"]
    _assert_sample(reference, 1, positives, n_pos)
    _assert_sample(reference, 0, negatives, n_neg)

    cls, delta, delta_weight = anchors(pysot[f"{key}_target"], False, np.random.default_rng(i))
    assert cls.dtype == np.int64 and delta.dtype == delta_weight.dtype == np.float32
    assert set(np.unique(cls)) <= {-1, 0, 1}
    _assert_sample(cls, 1, positives, n_pos)
    _assert_sample(cls, 0, negatives, n_neg)
    np.testing.assert_allclose(delta, pysot[f"{key}_delta"], rtol=1e-6, atol=1e-7)
    expected_weight = np.where(cls == 1, np.float32(1 / (n_pos + 1e-6)), np.float32(0))
    np.testing.assert_allclose(delta_weight, expected_weight, rtol=1e-6)
    np.testing.assert_allclose(np.unique(delta_weight), np.unique(pysot[f"{key}_delta_weight_seeded"]),
                               rtol=1e-6)


def test_anchor_sampling_follows_the_generator(pysot):
    anchors = AnchorTargets(score_size=25)
    target = pysot["s25_t0_target"]
    first = anchors(target, False, np.random.default_rng(1))[0]
    np.testing.assert_array_equal(first, anchors(target, False, np.random.default_rng(1))[0])
    assert not np.array_equal(first, anchors(target, False, np.random.default_rng(2))[0])


@pytest.mark.parametrize("i", NEGATIVES)
def test_anchor_negative_pairs_match_reference(pysot, anchors, i):
    key = f"s{anchors.score_size}_neg{i}"
    target = pysot[f"{key}_target"]
    positives, negatives = anchors.candidates(target, negative=True)
    assert not positives.any()
    np.testing.assert_array_equal(negatives, pysot[f"{key}_candidates"])
    _assert_sample(pysot[f"{key}_cls_seeded"], 0, negatives, 16)

    cls, delta, delta_weight = anchors(target, True, np.random.default_rng(i))
    _assert_sample(cls, 0, negatives, 16)
    assert (cls[cls != 0] == -1).all()
    assert not delta.any() and not delta_weight.any()
    assert delta.shape == (4,) + cls.shape


def test_anchor_targets_reject_bad_input():
    with pytest.raises(ValueError, match="score_size must be an integer >= 1, got 0"):
        AnchorTargets(score_size=0)
    with pytest.raises(ValueError, match="thr_low <= thr_high"):
        AnchorTargets(score_size=17, thr_low=0.7)
    with pytest.raises(ValueError, match=r"pos_num \(65\) must not exceed total_num \(64\)"):
        AnchorTargets(score_size=17, pos_num=65)
    anchors = AnchorTargets(score_size=17)
    with pytest.raises(ValueError, match="target_corner must have x2 > x1 and y2 > y1"):
        anchors((10, 10, 10, 20), False, np.random.default_rng(0))
    with pytest.raises(ValueError, match="target_corner must be 4 finite numbers"):
        anchors.overlaps((10, 10, np.nan, 20))


def test_pysot_bbox_matches_reference(pysot):
    corners = pysot_bbox((511, 511, 3), pysot["get_bbox_shapes_wh"])
    np.testing.assert_allclose(corners, pysot["get_bbox_corner"], rtol=1e-12)
    single = pysot_bbox((511, 511), pysot["get_bbox_shapes_wh"][0])
    np.testing.assert_allclose(single, pysot["get_bbox_corner"][0], rtol=1e-12)
    with pytest.raises(ValueError, match="box_wh must hold finite sizes > 0"):
        pysot_bbox((511, 511), (0, 10))
    with pytest.raises(ValueError, match=r"box_wh must be \(w, h\)"):
        pysot_bbox((511, 511), (1, 2, 3))


# NanoTrack ------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=[16, 15], ids=["s16", "s15"])
def points(request):
    return PointTargets(score_size=request.param)


def test_points_match_reference(nano, points):
    size = points.score_size
    np.testing.assert_array_equal(points.points, nano[f"s{size}_points"])
    assert points.points[0, 0, 0] == 127 - size // 2 * 16


@pytest.mark.parametrize("i", TARGETS)
def test_point_candidates_deltas_and_sampling_match_reference(nano, points, i):
    key = f"s{points.score_size}_t{i}"
    target = nano[f"{key}_target"]
    positives, negatives = points.candidates(target)
    np.testing.assert_array_equal(positives, nano[f"{key}_pos_candidates"])
    np.testing.assert_array_equal(negatives, nano[f"{key}_neg_candidates"])
    np.testing.assert_allclose(points.deltas(target), nano[f"{key}_delta"], rtol=1e-6, atol=1e-6)

    n_pos, n_neg = min(int(positives.sum()), 16), min(int(negatives.sum()), 48)
    _assert_sample(nano[f"{key}_cls_seeded"], 1, positives, n_pos)
    _assert_sample(nano[f"{key}_cls_seeded"], 0, negatives, n_neg)
    cls, delta = points(target, False, np.random.default_rng(i))
    assert cls.dtype == np.int64 and delta.dtype == np.float32
    _assert_sample(cls, 1, positives, n_pos)
    _assert_sample(cls, 0, negatives, n_neg)
    np.testing.assert_allclose(delta, nano[f"{key}_delta"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("i", NEGATIVES)
def test_point_negative_pairs_match_reference(nano, points, i):
    key = f"s{points.score_size}_neg{i}"
    target = nano[f"{key}_target"]
    inner = nano[f"s{points.score_size}_t{i}_pos_candidates"]  # the same target box
    np.testing.assert_array_equal(target, nano[f"s{points.score_size}_t{i}_target"])
    positives, negatives = points.candidates(target, negative=True)
    assert not positives.any()
    np.testing.assert_array_equal(negatives, inner)
    size = min(int(inner.sum()), 16)
    _assert_sample(nano[f"{key}_cls_seeded"], 0, inner, size)
    cls, delta = points(target, True, np.random.default_rng(i))
    _assert_sample(cls, 0, inner, size)
    assert (cls[cls != 0] == -1).all() and not delta.any()


def test_point_targets_sample_at_most_neg_num_on_negative_pairs():
    points = PointTargets(score_size=16)
    big = (0.0, 0.0, 255.0, 255.0)  # its w/4 ellipse holds far more than 16 points
    assert points.candidates(big, negative=True)[1].sum() > 16
    cls, _ = points(big, True, np.random.default_rng(0))
    assert (cls == 0).sum() == 16 and (cls == 1).sum() == 0


def test_point_targets_reject_bad_input():
    with pytest.raises(ValueError, match="stride must be an integer >= 1, got 0"):
        PointTargets(score_size=16, stride=0)
    with pytest.raises(ValueError, match="neg_num must be an integer >= 0"):
        PointTargets(score_size=16, neg_num=-1)
    with pytest.raises(ValueError, match="target_corner must be 4 finite numbers"):
        PointTargets(score_size=16).deltas((1, 2, 3))
