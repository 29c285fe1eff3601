"""The published networks' centre bias: its correction in the loops and the ``bias`` command."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

import tracker
from tests.boxes import ious
from tests.conftest import shared_path
from tests.test_long_term import MARKER, START, MarkerRunner, marker_frame
from tracker.api import Tracker
from tracker.benchmark.__main__ import main
from tracker.benchmark.bias import TRACKED_IOU, measure_bias
from tracker.benchmark.datasets import OTBFolder
from tracker.geometry import context_size


@pytest.mark.parametrize("name", ["nanotrack-v2", "siamrpnpp-alex", "siamfc-alexnet"])
def test_the_correction_moves_each_located_centre_by_the_bias_in_frame_pixels(name):
    """center_bias is in frame pixels: the box moves left and up by exactly it (not scaled by
    the crop), and nothing else changes."""
    boxes = {}
    for bias in ((0.0, 0.0), (3.0, -2.0)):
        config = tracker.get_config(name).with_tracking(long_term=False, center_bias=bias)
        trk = Tracker(config, MarkerRunner(config))
        trk.init(marker_frame(START), START + (MARKER, MARKER))
        boxes[bias] = trk.update(marker_frame(START)).box
    plain, corrected = np.array(boxes[(0.0, 0.0)]), np.array(boxes[(3.0, -2.0)])
    np.testing.assert_allclose(corrected - plain, [-3.0, 2.0, 0, 0], atol=1e-9)


def test_the_records_correct_nanotrack_only():
    biased = {name for name in tracker.list_models()
              if tracker.get_config(name).tracking.center_bias != (0.0, 0.0)}
    assert biased == {"nanotrack-v1", "nanotrack-v2", "nanotrack-v3"}


def _one_sequence(tmp_path, name="vot_bag"):
    (tmp_path / name).symlink_to(shared_path("data", "otb", name), target_is_directory=True)
    return tmp_path


def test_the_command_prints_the_median_offsets_computed_here(tmp_path):
    root = _one_sequence(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["bias", "--dataset", "otb", "--root", str(root), "--model", "nanotrack-v2",
                     "--backend", "onnxruntime", "--threads", "1"])
    assert code == 0, err.getvalue()

    dataset = OTBFolder(root)
    img_files, anno = dataset["vot_bag"]
    truth = anno - [1, 1, 0, 0]
    import cv2

    trk = tracker.build_tracker("nanotrack-v2", backend="onnxruntime", threads=1,
                                long_term=False, center_bias=(0.0, 0.0))
    boxes = [truth[0]]
    for index, path in enumerate(img_files):
        frame = cv2.imread(path)
        if index == 0:
            trk.init(frame, tuple(truth[0]))
        else:
            boxes.append(trk.update(frame).box)
    boxes = np.array(boxes)
    iou = ious(boxes, truth)
    used = iou > TRACKED_IOU
    used[0] = False
    offsets = (boxes[:, :2] + boxes[:, 2:] / 2 - truth[:, :2] - truth[:, 2:] / 2)[used]
    scale = 127 / np.array([context_size(w, h, 0.5) for w, h in boxes[used, 2:]])
    frame_px, crop_px = np.median(offsets, axis=0), np.median(offsets * scale[:, None], axis=0)
    frame_residual = np.sqrt(np.mean((offsets - frame_px) ** 2, axis=0))
    crop_residual = np.sqrt(np.mean((offsets - crop_px / scale[:, None]) ** 2, axis=0))
    better = "frame px" if np.hypot(*frame_residual) <= np.hypot(*crop_residual) else "crop px"
    row = next(line for line in out.getvalue().splitlines() if line.startswith("nanotrack-v2"))
    expected = (f"{used.sum()}  {frame_px[0]:+.2f}, {frame_px[1]:+.2f}  "
                f"{frame_residual[0]:.3f}, {frame_residual[1]:.3f}  "
                f"{crop_px[0]:+.2f}, {crop_px[1]:+.2f}  "
                f"{crop_residual[0]:.3f}, {crop_residual[1]:.3f}  {better}")
    assert " ".join(row.split()[1:]) == " ".join(expected.split())


def test_a_sequence_never_tracked_well_is_an_error(tmp_path):
    root = tmp_path / "otb" / "Blank"
    (root / "img").mkdir(parents=True)
    import cv2

    for index in range(1, 4):
        cv2.imwrite(str(root / "img" / f"{index:04d}.jpg"), np.zeros((60, 80, 3), np.uint8))
    (root / "groundtruth_rect.txt").write_text("11,11,20,20\n60,40,10,10\n60,40,10,10\n")
    with pytest.raises(ValueError, match="nanotrack-v2: no frame tracked with IoU above 0.5"):
        measure_bias(OTBFolder(tmp_path / "otb"), ["nanotrack-v2"], "onnxruntime", 1,
                     progress=False)


@pytest.mark.slow
def test_the_records_hold_what_the_command_measures_on_the_shared_sequences():
    results = measure_bias(OTBFolder(shared_path("data", "otb")),
                           ["nanotrack-v1", "nanotrack-v2", "nanotrack-v3"], "onnxruntime", 2,
                           progress=False)
    for result in results:
        recorded = tracker.get_config(result.name).tracking.center_bias
        assert recorded == pytest.approx(result.frame_px, abs=0.005 + 1e-9), result.name
        assert result.explained_by == "frame px", result
