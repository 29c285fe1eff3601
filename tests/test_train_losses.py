"""Training losses and their gradients against the references' own numbers
(../shared/fixtures/training), on batches stacked from per-pair targets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.conftest import shared_path
from tracker.train.losses import (
    balanced_bce_loss, linear_iou_loss, nanotrack_loss, rpn_loss, select_cross_entropy,
)
from tracker.train.targets import AnchorTargets, PointTargets

RTOL = 1e-5


def _fixture(name: str):
    return np.load(shared_path("fixtures", "training", f"{name}.npz"))


def _leaf(array: np.ndarray) -> torch.Tensor:
    return torch.tensor(array, requires_grad=True)


def _assert_close(actual: torch.Tensor, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual.detach().numpy(), expected, rtol=RTOL, atol=1e-9)


# SiamFC ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", range(3))
def test_balanced_loss_and_gradient_match_reference(k):
    data = _fixture("siamfc")
    logits = _leaf(data[f"loss{k}_logits"])
    loss = balanced_bce_loss(logits, torch.tensor(data["labels_l15"]))
    loss.backward()
    _assert_close(loss, data[f"loss{k}_value"])
    _assert_close(logits.grad, data[f"loss{k}_grad"])


def test_balanced_loss_weighs_to_one_and_ignores_half_labels():
    labels = torch.tensor(np.array([[0.0, 1.0, 0.5, 0.0]], dtype=np.float32))
    logits = torch.zeros(1, 4, requires_grad=True)
    loss = balanced_bce_loss(logits, labels)
    loss.backward()
    assert loss.item() == pytest.approx(math.log(2), rel=1e-6)  # weights sum to 1
    # weights 1/2 on the positive, 1/4 on each negative, 0 on the 0.5 label
    np.testing.assert_allclose(logits.grad.numpy(), [[0.125, -0.25, 0.0, 0.125]], rtol=1e-6)


def test_balanced_loss_rejects_mismatched_labels():
    with pytest.raises(ValueError, match=r"labels must have the shape of logits \(2, 3\)"):
        balanced_bce_loss(torch.zeros(2, 3), torch.zeros(3, 2))


# pysot ----------------------------------------------------------------------------------------

def _rpn_inputs(data):
    return (_leaf(data["loss_cls_raw"]), _leaf(data["loss_loc_raw"]))


def test_rpn_loss_and_gradients_match_reference():
    data = _fixture("pysot")
    cls_raw, loc_raw = _rpn_inputs(data)
    losses = rpn_loss(cls_raw, loc_raw, torch.tensor(data["loss_labels"]),
                      torch.tensor(data["loss_deltas"]), torch.tensor(data["loss_delta_weights"]))
    losses["total"].backward()
    for key in ("cls", "loc", "total"):
        _assert_close(losses[key], data[f"loss_{key}"])
    _assert_close(cls_raw.grad, data["loss_cls_raw_grad"])
    _assert_close(loc_raw.grad, data["loss_loc_raw_grad"])


def test_rpn_loss_on_stacked_per_pair_targets():
    """The trainer stacks each pair's numpy targets. With at most 16 positive candidates per
    target every one is kept, so the stacked regression loss is the reference's exactly."""
    data = _fixture("pysot")
    anchors = AnchorTargets(score_size=25)
    rng = np.random.default_rng(0)
    pairs = [anchors(data[f"s25_t{i}_target"], False, rng) for i in range(4)]
    cls, delta, weight = (torch.from_numpy(np.stack(part)) for part in zip(*pairs))
    assert cls.shape == data["loss_labels"].shape and cls.dtype == torch.int64
    np.testing.assert_allclose(delta.numpy(), data["loss_deltas"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(weight.numpy(), data["loss_delta_weights"], rtol=1e-6)
    cls_raw, loc_raw = _rpn_inputs(data)
    losses = rpn_loss(cls_raw, loc_raw, cls, delta, weight)
    _assert_close(losses["loc"], data["loss_loc"])
    losses["total"].backward()
    assert torch.isfinite(cls_raw.grad).all() and loc_raw.grad.abs().sum() > 0


def test_rpn_loss_without_positives():
    """A batch of negative pairs: only the negatives' half of the cross-entropy, no regression."""
    anchors = AnchorTargets(score_size=5)
    cls, delta, weight = anchors((100, 100, 150, 150), True, np.random.default_rng(0))
    cls_raw = torch.zeros(1, 10, 5, 5, requires_grad=True)
    loc_raw = torch.ones(1, 20, 5, 5, requires_grad=True)
    losses = rpn_loss(cls_raw, loc_raw, torch.from_numpy(cls)[None], torch.from_numpy(delta)[None],
                      torch.from_numpy(weight)[None])
    assert losses["cls"].item() == pytest.approx(0.5 * math.log(2), rel=1e-6)
    assert losses["loc"].item() == 0
    losses["total"].backward()
    negatives = torch.from_numpy(cls)[None] == 0
    foreground = cls_raw.grad[:, 5:]  # d(0.5 * mean of -log p_background) / d logit_fg
    np.testing.assert_allclose(foreground[negatives].numpy(), 0.5 * 0.5 / 16, rtol=1e-6)
    assert not foreground[~negatives].any()
    assert not loc_raw.grad.any()


def test_rpn_loss_rejects_mismatched_shapes():
    cls_raw, loc_raw = torch.zeros(2, 10, 5, 5), torch.zeros(2, 20, 5, 5)
    cls, delta, weight = torch.zeros(2, 5, 5, 5), torch.zeros(2, 4, 5, 5, 5), torch.zeros(2, 5, 5, 5)
    with pytest.raises(ValueError, match=r"cls_raw must be N x 2A x H x W, got \(2, 9, 5, 5\)"):
        rpn_loss(torch.zeros(2, 9, 5, 5), loc_raw, cls, delta, weight)
    with pytest.raises(ValueError, match=r"delta must have shape \(2, 4, 5, 5, 5\), got \(2, 20,"):
        rpn_loss(cls_raw, loc_raw, cls, loc_raw, weight)
    with pytest.raises(ValueError, match=r"cls_target must have shape \(2, 5, 5, 5\)"):
        rpn_loss(cls_raw, loc_raw, cls[:1], delta, weight)


# NanoTrack ------------------------------------------------------------------------------------

def test_nanotrack_loss_and_gradients_match_reference():
    data = _fixture("nanotrack")
    cls_raw, loc_raw = _leaf(data["loss_cls_raw"]), _leaf(data["loss_loc_raw"])
    losses = nanotrack_loss(cls_raw, loc_raw, torch.tensor(data["loss_labels"]),
                            torch.tensor(data["loss_deltas"]))
    losses["total"].backward()
    for key in ("cls", "loc", "total"):
        _assert_close(losses[key], data[f"loss_{key}"])
    _assert_close(cls_raw.grad, data["loss_cls_raw_grad"])
    _assert_close(loc_raw.grad, data["loss_loc_raw_grad"])


def test_nanotrack_loss_on_stacked_per_pair_targets():
    data = _fixture("nanotrack")
    points = PointTargets(score_size=16)
    rng = np.random.default_rng(0)
    pairs = [points(data[f"s16_t{i}_target"], False, rng) for i in range(4)]
    cls, delta = (torch.from_numpy(np.stack(part)) for part in zip(*pairs))
    np.testing.assert_array_equal(cls == 1, data["loss_labels"] == 1)  # all positives kept
    np.testing.assert_allclose(delta.numpy(), data["loss_deltas"], rtol=1e-6, atol=1e-6)
    loc_raw = _leaf(data["loss_loc_raw"])
    losses = nanotrack_loss(torch.tensor(data["loss_cls_raw"]), loc_raw, cls, delta)
    _assert_close(losses["loc"], data["loss_loc"])


def test_nanotrack_loss_without_positives():
    cls_raw = torch.zeros(2, 2, 4, 4, requires_grad=True)
    loc_raw = torch.ones(2, 4, 4, 4, requires_grad=True)
    labels = torch.full((2, 4, 4), -1, dtype=torch.int64)
    labels[0, 1, 1] = 0
    losses = nanotrack_loss(cls_raw, loc_raw, labels, torch.ones(2, 4, 4, 4))
    assert losses["cls"].item() == pytest.approx(0.5 * math.log(2), rel=1e-6)
    assert losses["loc"].item() == 0
    losses["total"].backward()
    assert torch.isfinite(loc_raw.grad).all() and not loc_raw.grad.any()
    assert cls_raw.grad[0, 1, 1, 1].item() == pytest.approx(0.25, rel=1e-6)


def test_linear_iou_loss_values():
    target = torch.tensor([[2.0, 2.0, 2.0, 2.0]])
    assert linear_iou_loss(target.clone(), target).item() == 0
    # a 2 x 2 box inside a 4 x 4 one around the same point: I = 4, U = 16
    assert linear_iou_loss(torch.ones(1, 4), target).item() == pytest.approx(1 - 5 / 17, rel=1e-6)


def test_select_cross_entropy_values_and_shape_check():
    log_probs = torch.log(torch.tensor([[0.5, 0.5], [0.2, 0.8], [0.9, 0.1]]))
    labels = torch.tensor([1, 1, -1])
    expected = 0.5 * -(math.log(0.5) + math.log(0.8)) / 2  # no negatives: their half is 0
    assert select_cross_entropy(log_probs, labels).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="must be the labels' shape"):
        select_cross_entropy(log_probs, labels[:2])


def test_nanotrack_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"loc_raw must have shape \(1, 4, 3, 3\), got \(1, 4, 3, 2\)"):
        nanotrack_loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 4, 3, 2),
                       torch.zeros(1, 3, 3), torch.zeros(1, 4, 3, 3))
