"""The contract every registered model keeps, checked for each name ``tracker.list_models()``
returns (a new model is covered the moment it is registered): its record describes it, its
config survives a round trip, it tracks through the public API on the torch backend, it exports,
and the export tracks on onnxruntime as torch does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tracker
from tests.steps import exported, network_for
from tracker.config import FAMILIES, ModelConfig

FRAME_SIZE = (240, 320)
START_BOX = (120.0, 90.0, 40.0, 30.0)
FRAMES = 5


def _clip() -> list:
    """A textured background with a bright, patterned box moving right and down 3 px a frame."""
    rng = np.random.default_rng(7)
    background = rng.integers(0, 120, (*FRAME_SIZE, 3), dtype=np.uint8)
    target = rng.integers(150, 256, (30, 40, 3), dtype=np.uint8)
    clip = []
    for t in range(FRAMES + 1):
        frame = background.copy()
        x, y = 120 + 3 * t, 90 + 3 * t
        frame[y:y + 30, x:x + 40] = target
        clip.append(frame)
    return clip


CLIP = _clip()


def _track(trk: tracker.Tracker) -> np.ndarray:
    trk.init(CLIP[0], START_BOX)
    rows = []
    for frame in CLIP[1:]:
        result = trk.update(frame)
        rows.append([*result.box, result.score, float(result.lost)])
    return np.array(rows)


def _assert_sane(rows: np.ndarray, lost_threshold: float) -> None:
    height, width = FRAME_SIZE
    boxes, scores, lost = rows[:, :4], rows[:, 4], rows[:, 5].astype(bool)
    assert np.isfinite(rows).all()
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    assert ((centres >= 0) & (centres <= [width, height])).all(), centres
    assert ((boxes[:, 2:] > 0) & (boxes[:, 2:] <= [width, height])).all(), boxes
    assert ((scores >= 0) & (scores <= 1)).all(), scores
    np.testing.assert_array_equal(lost, scores < lost_threshold)


@pytest.mark.parametrize("name", tracker.list_models())
def test_the_record_describes_the_model(name):
    info = tracker.describe(name)
    config = tracker.get_config(name)
    assert info["name"] == config.name == name
    assert info["family"] in FAMILIES
    assert info["description"] and info["source"] and info["license"]
    assert info["artifacts"]["checkpoint"]["file"]
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert info["config"] == config.to_dict()


def _torch_rows(name: str, folder) -> np.ndarray:
    checkpoint = folder / f"{name}.pth"
    torch.save(network_for(name).state_dict(), checkpoint)
    return _track(tracker.build_tracker(name, weights=checkpoint))


@pytest.mark.parametrize("name", tracker.list_models())
def test_the_model_tracks_through_the_api(name, tmp_path):
    _assert_sane(_torch_rows(name, tmp_path), tracker.get_config(name).tracking.lost_threshold)


@pytest.mark.slow
@pytest.mark.parametrize("name", tracker.list_models())
def test_the_export_tracks_as_torch_does(name, tmp_path):
    torch_rows = _torch_rows(name, tmp_path)
    onnx_rows = _track(tracker.build_tracker(name, backend="onnxruntime", weights=exported(name)))
    _assert_sane(onnx_rows, tracker.get_config(name).tracking.lost_threshold)
    np.testing.assert_allclose(onnx_rows[:, :4], torch_rows[:, :4], atol=0.05, rtol=0)
    np.testing.assert_allclose(onnx_rows[:, 4], torch_rows[:, 4], atol=1e-3, rtol=0)


def test_the_contract_covers_every_family():
    families = {tracker.get_config(name).family for name in tracker.list_models()}
    assert families == {"siamfc", "siamrpn", "nanotrack"}
