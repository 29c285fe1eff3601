"""The public API: construction, bad input, restart, threads, lost target."""

from __future__ import annotations

import dataclasses
import json
import threading

import cv2
import numpy as np
import pytest

import tracker
from tests.boxes import ious
from tests.conftest import shared_path
from tracker import NotInitializedError, TrackerError, UnknownNameError

SEQUENCE = "Crossing"


@pytest.fixture(scope="module")
def frames():
    folder = shared_path("data", "otb", SEQUENCE)
    paths = sorted((folder / "img").glob("*.jpg"))[:30]
    ground_truth = np.loadtxt(folder / "groundtruth_rect.txt", delimiter=",")
    box = tuple(ground_truth[0] - [1, 1, 0, 0])
    return [cv2.imread(str(p)) for p in paths], box


@pytest.fixture(scope="module")
def trk():
    # lost_threshold was calibrated on the references' loop (short-term, uncorrected).
    return tracker.build_tracker(
        "nanotrack-v2", weights=shared_path("weights", "nanotrack", "nanotrackv2.pth"),
        long_term=False, center_bias=(0.0, 0.0),
    )


def _run(trk, frames, box, transform=lambda f: f):
    trk.init(transform(frames[0]), box)
    return [trk.update(transform(f)) for f in frames[1:]]


def test_list_models_names_every_published_model():
    assert tracker.list_models() == (
        "siamfc-alexnet", "dasiamrpn-otb", "dasiamrpn-vot", "dasiamrpn-big", "siamrpnpp-alex",
        "siamrpnpp-mobilenetv2", "siamrpnpp-r50", "siamrpnpp-r50-otb", "nanotrack-v1",
        "nanotrack-v2", "nanotrack-v3",
    )


def test_describe_gives_config_source_and_licence():
    info = tracker.describe("nanotrack-v2")
    assert info["config"]["tracking"]["window_influence"] == 0.49
    assert (info["family"], info["license"]) == ("nanotrack", "Apache-2.0")
    assert info["attribution"].startswith("NanoTrack, Copyright HonglinChu")
    checkpoint = info["artifacts"]["checkpoint"]
    assert (checkpoint["file"], checkpoint["size"]) == ("nanotrackv2.pth", 2095829)
    assert checkpoint["sha256"].startswith("938a320c")
    assert json.loads(json.dumps(info)) == info
    with pytest.raises(UnknownNameError, match="unknown model 'nanotrack-v9'"):
        tracker.describe("nanotrack-v9")


def test_tracking_follows_the_target(trk, frames):
    images, box = frames
    results = _run(trk, images, box)
    assert all(isinstance(r, tracker.TrackResult) for r in results)
    assert all(isinstance(v, float) for v in results[-1].box)
    assert all(0.0 <= r.score <= 1.0 and not r.lost for r in results)
    with pytest.raises(dataclasses.FrozenInstanceError):
        results[0].score = 1.0


def test_init_again_restarts_from_scratch(trk, frames):
    images, box = frames
    first = _run(trk, images, box)
    trk.init(images[5], box)
    trk.update(images[9])
    assert _run(trk, images, box) == first


def test_update_before_init_is_a_clear_error(trk):
    fresh = trk.clone()
    with pytest.raises(NotInitializedError, match="before init"):
        fresh.update(np.zeros((40, 40, 3), np.uint8))
    assert issubclass(NotInitializedError, TrackerError)


@pytest.mark.parametrize(
    "frame,message",
    [
        (None, "frame is None"),
        ([[0, 0, 0]], "must be a numpy array"),
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((20, 20, 3), np.float32), "dtype uint8"),
        (np.zeros((20, 20, 5), np.uint8), "H x W x 3"),
        (np.zeros((2, 20, 20, 3), np.uint8), "H x W x 3"),
    ],
)
def test_bad_frames_are_named(trk, frame, message):
    with pytest.raises(ValueError, match=message):
        trk.init(frame, (1, 1, 5, 5))
    trk.init(np.zeros((20, 20, 3), np.uint8), (1, 1, 5, 5))
    with pytest.raises(ValueError, match=message):
        trk.update(frame)


@pytest.mark.parametrize(
    "box,message",
    [
        ((10, 10, 0, 5), "positive width and height"),
        ((10, 10, 5, -1), "positive width and height"),
        ((float("nan"), 10, 5, 5), "finite"),
        ((10, float("inf"), 5, 5), "finite"),
        ((400, 10, 5, 5), "entirely outside the 360x240 frame"),
        ((-50, 10, 40, 5), "entirely outside"),
        ((10, 10, 0.5, 5), "at least 1 pixel wide and high"),
        ((0, 0, 1e6, 1e6), "larger than the 360x240 frame"),
        ((0, 0, 100, 241), "larger than the 360x240 frame"),
        ((True, 2, 3, 4), "four numbers"),
        ((1, 2, 3), "four numbers"),
        ("1,2,3,4", "four numbers"),
        (None, "four numbers"),
    ],
)
def test_bad_boxes_are_named(trk, frames, box, message):
    with pytest.raises(ValueError, match=message) as error:
        trk.init(frames[0][0], box)
    assert "box" in str(error.value)


def test_box_partly_outside_and_numpy_boxes_are_accepted(trk, frames):
    images, _ = frames
    trk.init(images[0], np.array([-10.0, -10.0, 40.0, 40.0]))
    result = trk.update(images[1])
    assert np.isfinite(result.box).all()


def test_grayscale_bgra_and_strided_frames_are_converted(trk, frames):
    images, box = frames
    gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in images[:6]]
    as_bgr = [cv2.cvtColor(g, cv2.COLOR_GRAY2BGR) for g in gray]
    assert _run(trk, gray, box) == _run(trk, as_bgr, box)
    assert _run(trk, [g[:, :, None] for g in gray], box) == _run(trk, as_bgr, box)
    bgra = [cv2.cvtColor(f, cv2.COLOR_BGR2BGRA) for f in images[:6]]
    assert _run(trk, bgra, box) == _run(trk, images[:6], box)
    padded = [np.pad(f, ((0, 0), (0, 0), (0, 1)))[:, :, :3] for f in images[:6]]
    assert not padded[0].flags["C_CONTIGUOUS"]
    assert _run(trk, padded, box) == _run(trk, images[:6], box)


def test_frame_size_change_mid_sequence_is_refused(trk, frames):
    images, box = frames
    trk.init(images[0], box)
    with pytest.raises(ValueError, match="initialised on a 360x240 frame; call init"):
        trk.update(cv2.resize(images[1], (180, 120)))


def test_trackers_of_different_models_run_in_threads(frames):
    images, box = frames
    weights = shared_path("weights", "nanotrack")
    trackers = [
        tracker.build_tracker("nanotrack-v1", weights=weights / "nanotrackv1.pth"),
        tracker.build_tracker("nanotrack-v3", weights=weights / "nanotrackv3.pth"),
        tracker.build_tracker("nanotrack-v1", weights=weights / "nanotrackv1.pth"),
    ]
    expected = [_run(t, images, box) for t in trackers]
    results = [None] * len(trackers)

    def work(index):
        results[index] = _run(trackers[index], images, box)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(trackers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == expected
    assert expected[0] == expected[2] and expected[0] != expected[1]


def test_clone_shares_the_network_but_not_the_target(trk, frames):
    images, box = frames
    other = trk.clone()
    other.init(images[0], (10.0, 10.0, 30.0, 30.0))
    assert _run(trk, images[:5], box) == _run(tracker.build_tracker(
        "nanotrack-v2", weights=shared_path("weights", "nanotrack", "nanotrackv2.pth"),
        long_term=False, center_bias=(0.0, 0.0),
    ), images[:5], box)
    assert other.update(images[1]).box != trk.update(images[1]).box


def test_build_errors_are_clear(tmp_path):
    with pytest.raises(UnknownNameError, match="unknown model 'siamrpn'; known: siamfc-alexnet"):
        tracker.build_tracker("siamrpn")
    with pytest.raises(ValueError, match="unknown hyper-parameter.*window_influense"):
        tracker.build_tracker("nanotrack-v2", weights="x.pth", window_influense=0.3)
    with pytest.raises(ValueError, match="backend must be one of"):
        tracker.build_tracker("nanotrack-v2", weights="x.pth", backend="tensorflow")
    with pytest.raises(ValueError, match="window_influence must be in"):
        tracker.build_tracker("nanotrack-v2", weights="x.pth", window_influence=2.0)
    with pytest.raises(FileNotFoundError, match="checkpoint file not found"):
        tracker.build_tracker("nanotrack-v2", weights=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="threads applies to the onnxruntime backend.*set_num_threads"):
        tracker.build_tracker("nanotrack-v2", weights="x.pth", threads=2)
    with pytest.raises(ValueError, match="device applies to the torch backend"):
        tracker.build_tracker("nanotrack-v2", backend="onnxruntime", device="cpu")


def test_overrides_reach_the_tracking_loop(frames):
    images, box = frames
    weights = shared_path("weights", "nanotrack", "nanotrackv2.pth")
    default = tracker.build_tracker("nanotrack-v2", weights=weights)
    trk = tracker.build_tracker("nanotrack-v2", weights=weights, lr=0.0, lost_threshold=0.999999)
    assert trk.config.tracking.lr == 0.0
    assert tracker.get_config("nanotrack-v2").tracking.lr == 0.385
    plain, overridden = _run(default, images[:10], box), _run(trk, images[:10], box)
    # A size learning rate of 0 keeps the first box's size; a stricter threshold flags frames
    # the default does not.
    assert all(r.box[2:] == box[2:] for r in overridden)
    assert any(r.box[2:] != box[2:] for r in plain)
    assert not any(r.lost for r in plain)
    assert all(r.lost == (r.score < 0.999999) for r in overridden) and any(r.lost for r in overridden)


def test_device_argument_places_the_network_and_bad_devices_are_named(frames):
    import torch

    images, box = frames
    weights = shared_path("weights", "nanotrack", "nanotrackv2.pth")
    on_cpu = tracker.build_tracker("nanotrack-v2", weights=weights, device="cpu")
    assert _run(on_cpu, images[:5], box) == _run(
        tracker.build_tracker("nanotrack-v2", weights=weights), images[:5], box)
    tracker.build_tracker("nanotrack-v2", weights=weights, device=torch.device("cpu"))
    with pytest.raises(ValueError, match="device must be a torch device.*'gpu0'"):
        tracker.build_tracker("nanotrack-v2", weights=weights, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda:0' is not available"):
            tracker.build_tracker("nanotrack-v2", weights=weights, device="cuda:0")
    with pytest.raises(ValueError, match="device applies to the torch backend"):
        tracker.build_tracker("nanotrack-v2", backend="onnxruntime", device="cpu")


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA device")
def test_a_gpu_tracker_follows_the_cpu_one(frames):
    images, box = frames
    weights = shared_path("weights", "nanotrack", "nanotrackv2.pth")
    on_gpu = _run(tracker.build_tracker("nanotrack-v2", weights=weights, device="cuda:0"),
                  images, box)
    on_cpu = _run(tracker.build_tracker("nanotrack-v2", weights=weights), images, box)
    np.testing.assert_allclose([r.box for r in on_gpu], [r.box for r in on_cpu], atol=0.05)


def test_the_callers_torch_thread_count_is_left_alone(frames):
    import torch

    images, box = frames
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trk = tracker.build_tracker(
            "siamfc-alexnet", weights=shared_path("fixtures", "siamfc", "checkpoint.pth"))
        _run(trk, images[:3], box)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)


def test_target_leaving_the_view_is_flagged_lost_and_found_again(trk):
    """A camera pans right over a still DTB70 frame until the surfer has left the view
    on the left for a while, then pans back (a 320x240 window on the 1280x720 frame)."""
    folder = shared_path("data", "otb", "dtb70_Surfing06")
    still = cv2.imread(str(folder / "img" / "0001.jpg"))
    x, y, w, h = np.loadtxt(folder / "groundtruth_rect.txt", delimiter=",")[0] - [1, 1, 0, 0]
    left, top = int(x + w / 2 - 160), int(y + h / 2 - 120)
    far = int(x + w) + 150
    pan = np.linspace(left, far, 20).astype(int).tolist()
    pan += [far] * 10 + pan[::-1]
    trk.init(still[top:top + 240, left:left + 320], (x - left, y - top, w, h))
    results = [trk.update(still[top:top + 240, o:o + 320]) for o in pan[1:]]
    true_x = np.array([x - o for o in pan[1:]])
    boxes = np.array([r.box for r in results])
    lost = np.array([r.lost for r in results])
    assert (boxes[:, 0] >= -boxes[:, 2]).all() and (boxes[:, 0] <= 320).all()
    in_view, out_of_view = true_x >= 0, true_x + w < 0
    assert out_of_view.sum() >= 20
    assert not lost[in_view].any()
    assert lost[out_of_view].mean() >= 0.7
    np.testing.assert_allclose(boxes[in_view][-5:, 0], true_x[in_view][-5:], atol=5)


def _track_sequence(trk, name):
    """Track a whole OTB-layout sequence from its first 0-based ground-truth box; returns the
    results, the ground truth of frames 2.., and the frame size."""
    folder = shared_path("data", "otb", name)
    images = [cv2.imread(str(p)) for p in sorted((folder / "img").glob("*.jpg"))]
    truth = np.loadtxt(folder / "groundtruth_rect.txt", delimiter=",") - [1, 1, 0, 0]
    trk.init(images[0], tuple(truth[0]))
    return [trk.update(f) for f in images[1:]], truth[1:], images[0].shape[:2]


def test_lost_flags_a_target_leaving_the_view_on_a_real_sequence(trk):
    """Biker: the rider rides out of the top of the frame for a few frames (72-78)."""
    results, truth, (height, width) = _track_sequence(trk, "Biker")
    lost = np.array([r.lost for r in results])
    overlaps = ious(np.array([r.box for r in results]), truth)
    leaving = ((truth[:, :2] < 0) | (truth[:, :2] + truth[:, 2:] > [width, height])).any(axis=1)
    assert leaving.sum() >= 5
    assert lost[leaving].sum() >= 3
    tracked = ~leaving & (overlaps > 0.5)
    assert tracked.sum() >= 120 and lost[tracked].mean() <= 0.02


def test_lost_flags_the_frames_where_the_tracker_lost_the_target(trk):
    """MotorRolling: the rider flips through the air and the tracker loses him (IoU < 0.3)."""
    results, truth, _ = _track_sequence(trk, "MotorRolling")
    lost = np.array([r.lost for r in results])
    overlaps = ious(np.array([r.box for r in results]), truth)
    assert (overlaps < 0.3).sum() >= 30
    assert lost[overlaps < 0.3].mean() >= 0.75
    assert lost[overlaps > 0.5].mean() < lost[overlaps < 0.3].mean() / 3
