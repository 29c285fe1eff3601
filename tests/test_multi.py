"""MultiTracker: the same boxes as independent trackers, in one network call per frame."""

from __future__ import annotations

from typing import Dict, List, Tuple

import cv2
import numpy as np
import pytest
import torch

import tracker
from tests.conftest import shared_path
from tests.steps import STEPS, exported, network_for
from tracker.api import Tracker
from tracker.backends.onnx_backend import load_exported
from tracker.backends.torch_backend import TorchRunner
from tracker.multi import MultiTracker

SEQUENCE = "Biker"
FRAMES = 8


class CountingRunner:
    """A runner that counts its network calls and the batch of each."""

    def __init__(self, runner) -> None:
        self.runner = runner
        self.batches: List[int] = []

    def template(self, z):
        return self.runner.template(z)

    def stack(self, kernels, crops):
        return self.runner.stack(kernels, crops)

    def track(self, kernel, x):
        self.batches.append(x.shape[0])
        return self.runner.track(kernel, x)


def frames() -> List[np.ndarray]:
    folder = shared_path("data", "otb", SEQUENCE, "img")
    if not folder.is_dir():
        pytest.skip(f"shared sequence {SEQUENCE} not found at {folder}")
    return [cv2.imread(str(folder / f"{i:04d}.jpg")) for i in range(1, FRAMES + 1)]


#: (frame of add, box) per target on the 640x360 frames; target 2 repeats target 0's box;
#: targets 0 and 2 are small enough for DaSiamRPN-BIG's larger search size, 1 and 3 are not;
#: target 1 is removed at frame 5.
SCENARIO = [(0, (261.0, 93.0, 16.0, 26.0)), (0, (150.0, 60.0, 60.0, 50.0)),
            (0, (261.0, 93.0, 16.0, 26.0)), (3, (400.0, 200.0, 80.0, 60.0))]
REMOVE = (5, 1)


def run_scenario(config, runner) -> Tuple[Dict[int, list], Dict[int, list], List[List[int]]]:
    """The scenario through one MultiTracker and through one Tracker per target; the
    MultiTracker's network batches per frame."""
    video = frames()
    counting = CountingRunner(runner)
    multi = MultiTracker(config, counting)
    singles: Dict[int, Tracker] = {}
    batched: Dict[int, list] = {}
    independent: Dict[int, list] = {}
    calls = []
    for index, frame in enumerate(video):
        if index == REMOVE[0]:
            multi.remove(REMOVE[1])
            del singles[REMOVE[1]]
        counting.batches = []
        for target_id, result in multi.update(frame).items():
            batched[target_id].append(result)
        calls.append(counting.batches)
        for target_id, single in singles.items():
            independent[target_id].append(single.update(frame))
        for start, box in SCENARIO:
            if start == index:
                target_id = multi.add(frame, box)
                singles[target_id] = Tracker(config, runner)
                singles[target_id].init(frame, box)
                batched[target_id], independent[target_id] = [], []
    return batched, independent, calls


def assert_same(batched, independent) -> None:
    assert batched.keys() == independent.keys() == {0, 1, 2, 3}
    for target_id in batched:
        assert len(batched[target_id]) == len(independent[target_id]) > 0
        for ours, theirs in zip(batched[target_id], independent[target_id]):
            np.testing.assert_allclose(ours.box, theirs.box, atol=1e-4, rtol=0,
                                       err_msg=f"target {target_id}")
            assert abs(ours.score - theirs.score) <= 1e-6, target_id
            assert ours.lost == theirs.lost
    for a, b in zip(batched[0], batched[2]):
        assert a == b


FAMILY_MODELS = ["siamfc-alexnet", "siamrpnpp-alex", "dasiamrpn-big", "nanotrack-v2", "nanotrack-v3"]


def _crops(config) -> int:
    return getattr(config.tracking, "scale_num", 1)


def expected_calls(config) -> List[List[int]]:
    """Per frame, the batch of each network call: all live targets in one call (DaSiamRPN-BIG:
    one call per search size, targets 0 and 2 in the larger one)."""
    crops = _crops(config)
    live = [0, 3, 3, 3, 4, 3, 3, 3]
    if config.name == "dasiamrpn-big":
        return [[]] + [[2, 1]] * 3 + [[2, 2]] + [[2, 1]] * 3
    return [[n * crops] if n else [] for n in live]


@pytest.mark.parametrize("name", FAMILY_MODELS)
def test_torch_multi_tracker_equals_independent_trackers(name):
    config = tracker.get_config(name)
    runner = TorchRunner(network_for(name), trace=name.startswith("nanotrack"))
    batched, independent, calls = run_scenario(config, runner)
    assert_same(batched, independent)
    assert calls == expected_calls(config)


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILY_MODELS)
def test_onnx_multi_tracker_equals_independent_trackers(name):
    config = tracker.get_config(name)
    runner = load_exported(config, exported(name), threads=2)
    batched, independent, calls = run_scenario(config, runner)
    assert_same(batched, independent)
    assert calls == expected_calls(config)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_published_onnx_pair_multi_tracker_equals_independent_trackers(version, monkeypatch):
    from tracker.backends.onnx_backend import load_published_nanotrack

    folder = shared_path("weights", "nanotrack")
    if not (folder / f"nanotrackv{version}.pth").is_file():
        pytest.skip(f"NanoTrack v{version} files not in the shared folder")
    monkeypatch.setenv("TRACKER_WEIGHTS", str(folder))
    config = tracker.get_config(f"nanotrack-v{version}")
    batched, independent, calls = run_scenario(config, load_published_nanotrack(config, threads=2))
    assert_same(batched, independent)
    assert calls == expected_calls(config)


@pytest.fixture(scope="module")
def nanotrack():
    if not shared_path("weights", "nanotrack", "nanotrackv2.pth").is_file():
        pytest.skip("NanoTrack v2 weights not in the shared folder")
    config = tracker.get_config("nanotrack-v2")
    return config, TorchRunner(network_for("nanotrack-v2"), trace=True)


def test_build_multi_tracker_tracks_with_published_weights(monkeypatch):
    weights = shared_path("weights", "nanotrack")
    if not (weights / "nanotrackv2.pth").is_file():
        pytest.skip("NanoTrack v2 weights not in the shared folder")
    monkeypatch.setenv("TRACKER_WEIGHTS", str(weights))
    multi = tracker.build_multi_tracker("nanotrack-v2", window_influence=0.4)
    assert isinstance(multi, tracker.MultiTracker) and multi.name == "nanotrack-v2"
    assert multi.config.tracking.window_influence == 0.4
    video = frames()
    assert multi.add(cv2.cvtColor(video[0], cv2.COLOR_BGR2GRAY), SCENARIO[0][1]) == 0
    result = multi.update(video[1])[0]
    assert result.box[0] == pytest.approx(261, abs=4) and result.score > 0.9


def test_update_without_targets_returns_an_empty_dict(nanotrack):
    multi = MultiTracker(*nanotrack)
    assert multi.targets == () and multi.update(frames()[0]) == {}
    with pytest.raises(ValueError, match="frame must be a numpy array"):
        multi.update("frame.jpg")


def test_ids_follow_add_order_and_are_never_reused(nanotrack):
    multi = MultiTracker(*nanotrack)
    frame = frames()[0]
    assert [multi.add(frame, box) for _, box in SCENARIO[:3]] == [0, 1, 2]
    multi.remove(1)
    assert multi.targets == (0, 2)
    multi.clear()
    assert multi.targets == () and multi.add(frame, SCENARIO[0][1]) == 3
    assert list(multi.update(frames()[1])) == [3]


def test_unknown_ids_are_refused_by_name(nanotrack):
    multi = MultiTracker(*nanotrack)
    multi.add(frames()[0], SCENARIO[0][1])
    with pytest.raises(tracker.UnknownTargetError, match=r"target_id 7 is not a tracked target \(tracked: 0\)"):
        multi.remove(7)
    multi.remove(0)
    with pytest.raises(KeyError, match="target_id 0 is not a tracked target"):
        multi.remove(0)


@pytest.mark.parametrize("box, message", [
    ((10, 10, 0, 5), "positive width and height"),
    ((10, 10, float("nan"), 5), "finite"),
    ((700, 10, 20, 20), "lies entirely outside the 640x360 frame"),
    ((1, 2, 3), "four numbers"),
])
def test_an_invalid_box_adds_no_target(nanotrack, box, message):
    multi = MultiTracker(*nanotrack)
    multi.add(frames()[0], SCENARIO[0][1])
    with pytest.raises(ValueError, match=message):
        multi.add(frames()[0], box)
    assert multi.targets == (0,)


def test_all_targets_share_one_frame_size_until_none_is_left(nanotrack):
    multi = MultiTracker(*nanotrack)
    frame = frames()[0]
    multi.add(frame, SCENARIO[0][1])
    small = frame[:200, :300]
    with pytest.raises(ValueError, match="frame is 300x200 but the tracker was initialised on a 640x360 frame; clear"):
        multi.add(small, (10, 10, 20, 20))
    with pytest.raises(ValueError, match="frame is 300x200"):
        multi.update(small)
    multi.remove(0)
    assert multi.add(small, (10, 10, 20, 20)) == 1
    assert multi.update(small)[1].box[2] > 0


def test_a_target_leaving_the_frame_stays_at_the_border(nanotrack):
    """A bright square runs off the right edge: its box stops at the border, as a Tracker's
    does, while the other target is tracked on."""
    config, runner = nanotrack
    video = []
    for step in range(12):
        frame = np.full((240, 320, 3), 40, np.uint8)
        x = 250 + 10 * step
        cv2.rectangle(frame, (x, 100), (x + 29, 129), (255, 255, 255), -1)
        cv2.circle(frame, (60, 60), 15, (0, 0, 255), -1)
        video.append(frame)
    multi, single = MultiTracker(config, runner), Tracker(config, runner)
    multi.add(video[0], (250, 100, 30, 30))
    multi.add(video[0], (45, 45, 30, 30))
    single.init(video[0], (250, 100, 30, 30))
    for frame in video[1:]:
        results, alone = multi.update(frame), single.update(frame)
        np.testing.assert_allclose(results[0].box, alone.box, atol=1e-4)
        x, y, w, h = results[0].box
        assert 0 <= x + w / 2 <= 320 and 0 <= y + h / 2 <= 240
        assert results[1].box[0] == pytest.approx(45, abs=2)
    assert x + w / 2 > 300


def test_exports_without_a_batch_dimension_refuse_several_targets():
    from tracker.backends.onnx_backend import (
        ExportedRunner, free_spatial_dims, load_graph, search_graph_of_pair, session,
    )

    folder = shared_path("weights", "nanotrack")
    backbone = folder / "nanotrackv2_nanotrack_backbone_sim.onnx"
    if not backbone.is_file():
        pytest.skip("NanoTrack v2 ONNX files not in the shared folder")
    head = folder / "nanotrackv2_nanotrack_head_sim.onnx"
    runner = ExportedRunner(
        session(free_spatial_dims(load_graph(backbone))),
        session(search_graph_of_pair(load_graph(backbone), load_graph(head))),
    )
    assert not runner.batched
    multi = MultiTracker(tracker.get_config("nanotrack-v2"), runner)
    video = frames()
    multi.add(video[0], SCENARIO[0][1])
    assert multi.update(video[1])[0].score > 0.9
    multi.add(video[1], SCENARIO[1][1])
    with pytest.raises(tracker.CheckpointError, match="write it again with python -m tracker.export"):
        multi.update(video[2])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(STEPS))
def test_exported_graphs_have_a_batch_dimension_that_matches_torch(name):
    """Three targets' exemplars through the template graph, three crops (each against its own
    target's kernel) through the search graph: the torch network's outputs."""
    import onnx

    from tests.test_onnx import assert_outputs_close

    folder = exported(name)
    for part in ("template", "search"):
        graph = onnx.load(str(folder / f"{part}.onnx")).graph
        assert all(i.type.tensor_type.shape.dim[0].dim_param for i in graph.input), part
    params = tracker.get_config(name).tracking
    generator = np.random.default_rng(3)
    z = (generator.random((3, 3, params.exemplar_size, params.exemplar_size)) * 255).astype(np.float32)
    x = (generator.random((3, 3, params.instance_size, params.instance_size)) * 255).astype(np.float32)
    runner = load_exported(tracker.get_config(name), folder)
    network = network_for(name)
    with torch.no_grad():
        expected = network.track(network.template(torch.from_numpy(z)), torch.from_numpy(x))
    actual = runner.track(runner.template(z), x)
    for key, value in expected.items():
        assert_outputs_close(actual[key], value.numpy(), f"{name} {key}")
    alone = runner.track(runner.template(z[1:2]), x[1:2])
    for key, value in expected.items():
        assert_outputs_close(alone[key], value.numpy()[1:2], f"{name} {key}, batch of one")


def test_the_eager_cpu_network_takes_a_large_batch_in_passes(monkeypatch):
    """Ten crops against ten kernels in passes of four: the outputs of one pass each."""
    from tracker.backends import torch_backend

    runner = TorchRunner(network_for("siamrpnpp-alex"))
    params = tracker.get_config("siamrpnpp-alex").tracking
    generator = np.random.default_rng(5)
    z = (generator.random((10, 3, params.exemplar_size, params.exemplar_size)) * 255).astype(np.float32)
    x = (generator.random((10, 3, params.instance_size, params.instance_size)) * 255).astype(np.float32)
    kernel = runner.template(z)
    calls = []
    track = runner.network.track
    monkeypatch.setattr(runner.network, "track", lambda k, s: calls.append(s.shape[0]) or track(k, s))
    outputs = runner.track(kernel, x)
    assert calls == [4, 4, 2] and torch_backend.CPU_PASS_CROPS == 4
    for i in (0, 5, 9):
        alone = runner.track(tuple(k[i:i + 1] for k in kernel), x[i:i + 1])
        for name in ("cls", "loc"):
            np.testing.assert_allclose(outputs[name][i:i + 1], alone[name], rtol=1e-5, atol=1e-5)
