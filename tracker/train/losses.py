"""Training losses of the three reference families, on batches of stacked per-pair targets.

The math reproduces the references' training code (``../shared/fixtures/training``):
siamfc-pytorch's ``BalancedLoss``, pysot's ``select_cross_entropy_loss`` + ``weight_l1_loss``
and NanoTrack's ``select_cross_entropy_loss`` + linear ``select_iou_loss``. Targets come from
:mod:`tracker.train.targets`.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F


def balanced_bce_loss(
    logits: torch.Tensor, labels: torch.Tensor, neg_weight: float = 1.0
) -> torch.Tensor:
    """siamfc-pytorch's balanced logistic loss: binary cross-entropy with logits, summed over
    the batch, each positive (label 1) weighted ``1 / n_pos`` and each negative (label 0)
    ``neg_weight / n_neg``, the weights normalised to sum to 1. Other labels (0.5) weigh 0."""
    if logits.shape != labels.shape:
        raise ValueError(f"labels must have the shape of logits {tuple(logits.shape)}, got "
                         f"{tuple(labels.shape)}")
    labels = labels.to(logits.dtype)
    positive, negative = labels == 1, labels == 0
    n_pos = positive.sum().clamp(min=1).to(logits.dtype)
    n_neg = negative.sum().clamp(min=1).to(logits.dtype)
    weight = positive / n_pos + negative * (neg_weight / n_neg)
    total_weight = weight.sum()
    if total_weight <= 0:
        raise ValueError("labels must contain at least one 0 (negative) or 1 (positive)")
    return F.binary_cross_entropy_with_logits(logits, labels, weight / total_weight, reduction="sum")


def select_cross_entropy(log_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Half the mean negative log-likelihood of the positives (label 1) plus half that of the
    negatives (label 0); -1 is ignored. ``log_probs`` is ``labels.shape + (2,)`` (background,
    foreground). A group with no member contributes 0, as in the references."""
    if log_probs.shape[:-1] != labels.shape or log_probs.shape[-1] != 2:
        raise ValueError(f"log-probabilities {tuple(log_probs.shape)} must be the labels' shape "
                         f"{tuple(labels.shape)} plus a last axis of 2")
    loss = log_probs.new_zeros(())
    for value in (0, 1):
        chosen = log_probs[..., value][labels == value]
        if chosen.numel():
            loss = loss - 0.5 * chosen.mean()
    return loss


def rpn_loss(
    cls_raw: torch.Tensor,
    loc_raw: torch.Tensor,
    cls_target: torch.Tensor,
    delta: torch.Tensor,
    delta_weight: torch.Tensor,
    cls_weight: float = 1.0,
    loc_weight: float = 1.2,
) -> Dict[str, torch.Tensor]:
    """pysot's SiamRPN(++) loss: ``total = cls_weight * cls + loc_weight * loc``.

    ``cls_raw`` (N x 2A x S x S) is the head's output: channel ``k * A + a`` is class ``k``
    (0 background, 1 foreground) of anchor ``a``. ``cls`` is :func:`select_cross_entropy` of
    its two-way log-softmax against ``cls_target`` (N x A x S x S). ``loc_raw`` (N x 4A x S x S)
    holds the 4 regression outputs of each anchor (channel ``c * A + a``); ``loc`` is the L1
    distance to ``delta`` (N x 4 x A x S x S) summed over the 4 and weighted by
    ``delta_weight`` (N x A x S x S), summed and divided by N.
    """
    n, anchors, height, width = _head_shape("cls_raw", cls_raw, 2)
    grid = (n, anchors, height, width)
    _expect("loc_raw", loc_raw, (n, 4 * anchors, height, width))
    _expect("cls_target", cls_target, grid)
    _expect("delta", delta, (n, 4) + grid[1:])
    _expect("delta_weight", delta_weight, grid)
    log_probs = F.log_softmax(cls_raw.view(n, 2, anchors, height, width).permute(0, 2, 3, 4, 1), dim=-1)
    cls = select_cross_entropy(log_probs, cls_target)
    distance = (loc_raw.view(n, 4, anchors, height, width) - delta).abs().sum(dim=1)
    loc = (distance * delta_weight).sum() / n
    return {"total": cls_weight * cls + loc_weight * loc, "cls": cls, "loc": loc}


def linear_iou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of ``1 - (I + 1) / (U + 1)`` over rows of side distances ``(l, t, r, b)``
    (M x 4) measured from the same point; 0 when there are no rows."""
    if pred.numel() == 0:
        return pred.sum()
    pred_area = (pred[:, 0] + pred[:, 2]) * (pred[:, 1] + pred[:, 3])
    target_area = (target[:, 0] + target[:, 2]) * (target[:, 1] + target[:, 3])
    near = torch.minimum(pred, target)
    intersection = (near[:, 0] + near[:, 2]) * (near[:, 1] + near[:, 3])
    union = pred_area + target_area - intersection
    return (1 - (intersection + 1) / (union + 1)).mean()


def nanotrack_loss(
    cls_raw: torch.Tensor,
    loc_raw: torch.Tensor,
    cls_target: torch.Tensor,
    delta: torch.Tensor,
    cls_weight: float = 1.0,
    loc_weight: float = 1.0,
) -> Dict[str, torch.Tensor]:
    """NanoTrack's loss: ``total = cls_weight * cls + loc_weight * loc``.

    ``cls_raw`` (N x 2 x S x S, background then foreground) goes through a two-way
    log-softmax and :func:`select_cross_entropy` against ``cls_target`` (N x S x S). ``loc_raw``
    (N x 4 x S x S) holds predicted distances ``(l, t, r, b)``; ``loc`` is
    :func:`linear_iou_loss` against ``delta`` (N x 4 x S x S) over the positive points.
    """
    n, _, height, width = _head_shape("cls_raw", cls_raw, 2)
    _expect("cls_raw", cls_raw, (n, 2, height, width))
    _expect("loc_raw", loc_raw, (n, 4, height, width))
    _expect("cls_target", cls_target, (n, height, width))
    _expect("delta", delta, (n, 4, height, width))
    cls = select_cross_entropy(F.log_softmax(cls_raw.permute(0, 2, 3, 1), dim=-1), cls_target)
    positive = cls_target == 1
    loc = linear_iou_loss(loc_raw.permute(0, 2, 3, 1)[positive], delta.permute(0, 2, 3, 1)[positive])
    return {"total": cls_weight * cls + loc_weight * loc, "cls": cls, "loc": loc}


def _head_shape(name: str, tensor: torch.Tensor, per_cell: int) -> Tuple[int, int, int, int]:
    """``(N, channels // per_cell, H, W)`` of an N x C x H x W head output."""
    if tensor.dim() != 4 or tensor.shape[1] == 0 or tensor.shape[1] % per_cell:
        raise ValueError(f"{name} must be N x {per_cell}A x H x W, got {tuple(tensor.shape)}")
    n, channels, height, width = tensor.shape
    return n, channels // per_cell, height, width


def _expect(name: str, tensor: torch.Tensor, shape: Tuple[int, ...]) -> None:
    if tuple(tensor.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(tensor.shape)}")
