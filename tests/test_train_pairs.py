"""Pair sampling: determinism, frame range, visibility, dataset weights, negatives, filtering."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tracker.train.data.pairs import Pair, PairSampler, PairSettings, pair_rng, sampleable_frames
from tracker.train.data.sequence import TrainSequence


class Frames:
    """In-memory frames: frame i is filled with the value i % 256."""

    def __init__(self, count: int, height: int = 100, width: int = 100) -> None:
        self.count, self.shape = count, (height, width, 3)

    def __len__(self) -> int:
        return self.count

    def read(self, index: int) -> np.ndarray:
        return np.full(self.shape, index % 256, dtype=np.uint8)


def sequence(name, count, valid=None, sides=30.0):
    sides = np.broadcast_to(np.asarray(sides, dtype=np.float64), (count,))
    boxes = np.stack([np.full(count, 10.0), np.full(count, 10.0), sides, sides], axis=1)
    valid = np.ones(count, bool) if valid is None else np.asarray(valid, bool)
    return TrainSequence(f"synthetic:{name}", Frames(count), boxes, valid)


def key(pair: Pair):
    return (pair.template[0].name, pair.template[1], pair.search[0].name, pair.search[1],
            pair.negative)


def draws(sampler, count, seed=7, epoch=0):
    return [sampler.pair(seed, epoch, index) for index in range(count)]


def test_a_pair_is_a_pure_function_of_seed_epoch_index_and_attempt():
    data = [([sequence("a", 50), sequence("b", 40)], 1.0)]
    settings = PairSettings(frame_range=10, negative_ratio=0.3)
    first, second = PairSampler(data, settings), PairSampler(data, settings)
    # Asked in another order, by another sampler (another worker or a resumed run).
    forward = [key(first.pair(3, 2, i)) for i in range(40)]
    backward = [key(second.pair(3, 2, i)) for i in reversed(range(40))][::-1]
    assert forward == backward
    assert len(set(forward)) >= 36
    assert [key(first.pair(3, 3, i)) for i in range(40)] != forward
    retries = [key(first.pair(3, 2, i, attempt=1)) for i in range(40)]
    assert sum(a != b for a, b in zip(forward, retries)) >= 36
    assert key(first.pair(3, 2, 5, attempt=1)) == key(second.pair(3, 2, 5, attempt=1))


def test_frame_range_is_respected_and_reached():
    sampler = PairSampler([([sequence("a", 300)], 1.0)],
                          PairSettings(frame_range=7, negative_ratio=0.0))
    distances = np.array([p.search[1] - p.template[1] for p in draws(sampler, 2000)])
    assert np.abs(distances).max() == 7
    assert distances.min() == -7
    assert (distances == 0).sum() > 0  # pysot lets the search frame be the template frame


def test_siamfc_pairs_are_two_different_frames_template_first():
    sampler = PairSampler([([sequence("a", 300)], 1.0)],
                          dataclasses.replace(PairSettings.siamfc(), frame_range=5))
    distances = np.array([p.search[1] - p.template[1] for p in draws(sampler, 2000)])
    assert distances.min() == 1 and distances.max() == 5


def test_frames_that_are_not_valid_are_never_sampled():
    valid = np.zeros(60, bool)
    valid[::3] = True  # 20 visible frames out of 60
    seq = sequence("sparse", 60, valid)
    sampler = PairSampler([([seq], 1.0)], PairSettings(frame_range=4, negative_ratio=0.0))
    frames = np.array([[p.template[1], p.search[1]] for p in draws(sampler, 2000)])
    assert valid[frames].all()
    assert set(np.unique(frames)) == set(np.flatnonzero(valid))
    # frame 0's neighbours within 4 frames: 0 and 3 only
    partners = {p.search[1] for p in draws(sampler, 2000) if p.template[1] == 0}
    assert partners == {0, 3}


def test_dataset_weights_are_respected():
    heavy = [sequence(f"h{i}", 20) for i in range(2)]
    light = [sequence(f"l{i}", 20) for i in range(5)]
    sampler = PairSampler([(heavy, 3.0), (light, 1.0)], PairSettings(negative_ratio=0.0))
    pairs = draws(sampler, 4000)
    share = np.mean([p.template[0].name.startswith("synthetic:h") for p in pairs])
    assert share == pytest.approx(0.75, abs=0.03)
    assert sampler.weights == pytest.approx((0.75, 0.25))


def test_negative_ratio_and_negative_pairs_use_another_sequence():
    sequences = [sequence(f"s{i}", 30) for i in range(3)]
    sampler = PairSampler([(sequences, 1.0)], PairSettings(negative_ratio=0.3))
    pairs = draws(sampler, 4000)
    negatives = [p for p in pairs if p.negative]
    assert len(negatives) / len(pairs) == pytest.approx(0.3, abs=0.03)
    assert all(p.search[0] is not p.template[0] for p in negatives)
    assert all(p.search[0] is p.template[0] for p in pairs if not p.negative)
    # each of the other two sequences is about equally likely as a negative's search
    counts = {}
    for p in negatives:
        counts[p.search[0].name] = counts.get(p.search[0].name, 0) + 1
    assert min(counts.values()) / max(counts.values()) > 0.85


def test_size_filter_keeps_siamfc_sized_targets_only():
    # sides 10 (too small), 30 (kept), 60 (over half of the 100-pixel frame), 30, ...
    seq = sequence("sizes", 40, sides=np.tile([10.0, 30.0, 60.0, 30.0], 10))
    settings = PairSettings.siamfc()
    assert sampleable_frames(seq, settings).tolist() == list(range(1, 40, 2))
    sampler = PairSampler([([seq, sequence("big", 10, sides=40.0)], 1.0)], settings)
    frames = [p.template[1] for p in draws(sampler, 500) if p.template[0] is seq]
    assert frames and all(f % 2 == 1 for f in frames)
    assert sampleable_frames(seq, PairSettings(min_size=0, max_size=None)).size == 40


def test_a_dataset_empty_after_filtering_is_an_error_naming_it():
    good = [sequence("good", 10)]
    tiny = [sequence("t0", 10, sides=12.0),
            sequence("t1", 10, valid=np.arange(10) < 4, sides=12.0)]
    with pytest.raises(ValueError) as error:
        PairSampler([(good, 1.0), (tiny, 1.0)], PairSettings.siamfc(), names=["good", "tiny"])
    message = str(error.value)
    assert "dataset tiny has no sampleable frame" in message
    assert "of 2 sequence(s) and 20 frame(s), 6 frame(s) are absent, occluded or have no box, " \
           "14 fail the size filter (pairs.min_size=20" in message
    assert "good" not in message.replace("dataset tiny", "")
    with pytest.raises(ValueError, match=r"dataset #1 \(synthetic\) has no sampleable frame"):
        PairSampler([(tiny, 1.0)], PairSettings.siamfc())


def test_bad_input_is_a_clear_error():
    data = [([sequence("a", 10), sequence("b", 10)], 1.0)]
    with pytest.raises(ValueError, match="pairs.frame_range must be an int >= 0, got -1"):
        PairSettings(frame_range=-1)
    with pytest.raises(ValueError, match=r"pairs.negative_ratio must be a number in \[0, 1\]"):
        PairSettings(negative_ratio=1.5)
    with pytest.raises(ValueError, match=r"pairs.max_size \(10.0\) must not be below "
                                         r"pairs.min_size \(20.0\)"):
        PairSettings(min_size=20, max_size=10)
    with pytest.raises(ValueError, match="weight must be a finite number > 0, got 0"):
        PairSampler([(data[0][0], 0)], PairSettings())
    with pytest.raises(ValueError, match="negative pairs need two sequences"):
        PairSampler([([sequence("a", 10)], 1.0)], PairSettings(negative_ratio=0.2))
    with pytest.raises(ValueError, match="index must be an int >= 0, got -1"):
        PairSampler(data, PairSettings()).pair(0, 0, -1)
    with pytest.raises(ValueError, match="purpose must be one of"):
        pair_rng(0, 0, 0, purpose="loss")


def test_settings_round_trip_as_plain_dicts_and_reference_defaults():
    settings = PairSettings.siamfc()
    assert PairSettings(**dataclasses.asdict(settings)) == settings
    assert (PairSettings.pysot().negative_ratio, PairSettings.pysot(deep=True).negative_ratio,
            PairSettings.pysot().frame_range) == (0.05, 0.2, 100)
    assert (PairSettings.nanotrack().negative_ratio, settings.frame_range,
            settings.max_size, settings.max_frame_fraction) == (0.2, 99, 500.0, 0.5)
    assert isinstance(PairSettings(max_size=500).max_size, float)


def test_streams_of_one_pair_are_independent_and_reproducible():
    a = pair_rng(1, 2, 3, 0, "augment").random(4)
    assert np.array_equal(a, pair_rng(1, 2, 3, 0, "augment").random(4))
    assert not np.array_equal(a, pair_rng(1, 2, 3, 0, "targets").random(4))
    assert not np.array_equal(a, pair_rng(1, 2, 3, 1, "augment").random(4))
