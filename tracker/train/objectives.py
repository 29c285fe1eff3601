"""What a family learns from one pair: its targets (numpy, built in the data workers) and its
loss (torch, on the stacked batch). One objective per family, the references' math from
:mod:`.targets` and :mod:`.losses`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Dict, Mapping

import numpy as np
import torch

from ..config import ModelConfig, check_limits
from .losses import balanced_bce_loss, nanotrack_loss, rpn_loss
from .targets import AnchorTargets, PointTargets, siamfc_labels

Batch = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class TargetSettings:
    """Label rules. SiamFC: ``r_pos`` / ``r_neg`` (pixels of the crop). pysot and NanoTrack:
    overlap thresholds (anchors only) and how many positives / negatives a pair keeps."""

    r_pos: float = 16.0
    r_neg: float = 0.0
    thr_high: float = 0.6
    thr_low: float = 0.3
    pos_num: int = 16
    total_num: int = 64
    neg_num: int = 16

    _LIMITS: ClassVar[Mapping[str, str]] = {
        "r_pos": "non-negative", "r_neg": "non-negative", "thr_high": "unit", "thr_low": "unit",
        "pos_num": "non-negative", "total_num": "non-negative", "neg_num": "non-negative",
    }

    def __post_init__(self) -> None:
        check_limits(self, self._LIMITS, "targets")
        if self.thr_low > self.thr_high:
            raise ValueError(f"targets.thr_low ({self.thr_low}) must not exceed targets.thr_high "
                             f"({self.thr_high})")

    @classmethod
    def siamfc(cls) -> "TargetSettings":
        return cls()

    @classmethod
    def pysot(cls) -> "TargetSettings":
        return cls()

    @classmethod
    def nanotrack(cls) -> "TargetSettings":
        return cls()


class Objective:
    """Targets for one pair and the loss of a batch, for one family."""

    #: what ``targets`` returns, stacked by the data loader
    target_keys: tuple = ()

    def targets(self, box_corner: np.ndarray, negative: bool,
                rng: np.random.Generator) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def loss(self, outputs: Mapping[str, torch.Tensor], batch: Batch) -> Dict[str, torch.Tensor]:
        """``total`` plus its parts (``cls``, ``loc`` where the family has them)."""
        raise NotImplementedError


class SiamFCObjective(Objective):
    """siamfc-pytorch: every pair's target sits at the crop centre, so one label map serves
    all; the balanced logistic loss."""

    def __init__(self, settings: TargetSettings, response_size: int, total_stride: int) -> None:
        self.labels = torch.from_numpy(siamfc_labels(
            response_size, settings.r_pos, settings.r_neg, total_stride))

    def targets(self, box_corner: np.ndarray, negative: bool,
                rng: np.random.Generator) -> Dict[str, np.ndarray]:
        return {}

    def loss(self, outputs: Mapping[str, torch.Tensor], batch: Batch) -> Dict[str, torch.Tensor]:
        response = outputs["response"]
        labels = self.labels.to(response.device, response.dtype).expand_as(response)
        total = balanced_bce_loss(response, labels)
        return {"total": total}


class AnchorObjective(Objective):
    """pysot: anchor classification and regression targets, cross-entropy + weighted L1."""

    target_keys = ("cls", "delta", "delta_weight")

    def __init__(self, config: ModelConfig, settings: TargetSettings, search_size: int,
                 cls_weight: float, loc_weight: float) -> None:
        params = config.tracking
        self.anchors = AnchorTargets(
            search_size=search_size, score_size=params.score_size(search_size),
            stride=params.anchor_stride, ratios=params.anchor_ratios, scales=params.anchor_scales,
            thr_high=settings.thr_high, thr_low=settings.thr_low, pos_num=settings.pos_num,
            total_num=settings.total_num, neg_num=settings.neg_num,
        )
        self.weights = (cls_weight, loc_weight)

    def targets(self, box_corner: np.ndarray, negative: bool,
                rng: np.random.Generator) -> Dict[str, np.ndarray]:
        cls, delta, delta_weight = self.anchors(box_corner, negative, rng)
        return {"cls": cls, "delta": delta, "delta_weight": delta_weight}

    def loss(self, outputs: Mapping[str, torch.Tensor], batch: Batch) -> Dict[str, torch.Tensor]:
        return rpn_loss(outputs["cls"], outputs["loc"], batch["cls"], batch["delta"],
                        batch["delta_weight"], *self.weights)


class PointObjective(Objective):
    """NanoTrack: point classification and side distances, cross-entropy + linear IoU."""

    target_keys = ("cls", "delta")

    def __init__(self, config: ModelConfig, settings: TargetSettings, search_size: int,
                 cls_weight: float, loc_weight: float) -> None:
        params = config.tracking
        self.points = PointTargets(
            search_size=search_size, score_size=params.score_size, stride=params.point_stride,
            pos_num=settings.pos_num, total_num=settings.total_num, neg_num=settings.neg_num,
        )
        self.weights = (cls_weight, loc_weight)

    def targets(self, box_corner: np.ndarray, negative: bool,
                rng: np.random.Generator) -> Dict[str, np.ndarray]:
        cls, delta = self.points(box_corner, negative, rng)
        return {"cls": cls, "delta": delta}

    def loss(self, outputs: Mapping[str, torch.Tensor], batch: Batch) -> Dict[str, torch.Tensor]:
        return nanotrack_loss(outputs["cls"], outputs["loc"], batch["cls"], batch["delta"],
                              *self.weights)


def _siamfc(config: ModelConfig, settings: TargetSettings, search_size: int,
            cls_weight: float, loc_weight: float) -> Objective:
    params = config.tracking
    response_size = (search_size - params.exemplar_size) // params.total_stride + 1
    return SiamFCObjective(settings, response_size, params.total_stride)


#: One objective per head family (:data:`tracker.config.FAMILIES`); a new family adds a line.
OBJECTIVES = {
    "siamfc": _siamfc,
    "siamrpn": AnchorObjective,
    "nanotrack": PointObjective,
}


def build_objective(config: ModelConfig, settings: TargetSettings, search_size: int,
                    cls_weight: float, loc_weight: float) -> Objective:
    """The objective of ``config``'s family for search crops of ``search_size`` pixels."""
    if config.family not in OBJECTIVES:
        raise ValueError(f"no training objective for family {config.family!r}; known: "
                         f"{', '.join(OBJECTIVES)}")
    return OBJECTIVES[config.family](config, settings, search_size, cls_weight, loc_weight)
