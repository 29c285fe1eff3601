"""Configuration dataclasses: a network layout plus the tracker hyper-parameters.

Configs are immutable values that serialize to plain dicts (``to_dict`` / ``from_dict``),
so two models with different settings can live in one process and a config can be written
next to an exported model. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple, Type

#: Head families; each has one tracking loop.
FAMILIES = ("siamfc", "siamrpn", "nanotrack")

#: Geometry rules of the reference implementations (crop window origin, padding value,
#: centre clipping, anchor grid origin). They differ by half pixels, which the published
#: checkpoints' tuned hyper-parameters depend on.
CONVENTIONS = ("pysot", "dasiamrpn", "siamfc")


@dataclass(frozen=True)
class NetworkConfig:
    """Network layout: registry names and their keyword arguments.

    ``published_prefixes`` maps prefixes of the internal state-dict keys to the prefixes
    the checkpoint authors used (``{"head.": "rpn_head."}``), so ``state_dict()`` and
    ``load_weights`` speak the published layout. ``apply_neck=False`` keeps a neck's
    parameters (they are in the checkpoint) without running it, as NanoTrack does.
    ``input_order`` is the channel order the network was trained on.
    """

    backbone: str
    head: str
    backbone_kwargs: Dict[str, Any] = field(default_factory=dict)
    neck: Optional[str] = None
    neck_kwargs: Dict[str, Any] = field(default_factory=dict)
    apply_neck: bool = True
    head_kwargs: Dict[str, Any] = field(default_factory=dict)
    input_order: str = "bgr"
    published_prefixes: Dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.input_order not in ("bgr", "rgb"):
            raise ValueError(f"input_order must be 'bgr' or 'rgb', got {self.input_order!r}")


@dataclass(frozen=True)
class TrackingParams:
    """Hyper-parameters shared by every tracking loop.

    ``lost_threshold``: ``TrackResult.lost`` is true when the frame's score (in [0, 1])
    falls below it.
    """

    exemplar_size: int = 127
    instance_size: int = 255
    context_amount: float = 0.5
    window_influence: float = 0.4
    lost_threshold: float = 0.5
    convention: str = "pysot"

    def __post_init__(self) -> None:
        if self.convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {self.convention!r}")
        if not 0.0 <= self.window_influence <= 1.0:
            raise ValueError(f"window_influence must be in [0, 1], got {self.window_influence!r}")
        if not 0.0 <= self.lost_threshold <= 1.0:
            raise ValueError(f"lost_threshold must be in [0, 1], got {self.lost_threshold!r}")
        if self.exemplar_size <= 0 or self.instance_size < self.exemplar_size:
            raise ValueError(
                "exemplar_size must be positive and instance_size at least exemplar_size, got "
                f"{self.exemplar_size} and {self.instance_size}"
            )


@dataclass(frozen=True)
class SiamFCParams(TrackingParams):
    """siamfc-pytorch's tracker: multi-scale search on an upsampled response map.

    ``min_size``: the target's shorter side does not shrink below it, nor does the target grow
    past the frame (a bound the reference lacks; it only binds once the target is lost).
    """

    convention: str = "siamfc"
    window_influence: float = 0.176
    scale_num: int = 3
    scale_step: float = 1.0375
    scale_lr: float = 0.59
    scale_penalty: float = 0.9745
    response_size: int = 17
    response_upsample: int = 16
    total_stride: int = 8
    min_size: float = 10.0


@dataclass(frozen=True)
class SiamRPNParams(TrackingParams):
    """Anchor-based RPN tracking (DaSiamRPN, pysot SiamRPN++).

    ``adaptive_instance_size``: DaSiamRPN-BIG searches a larger region (this size) when the
    initial box covers less than ``adaptive_area_ratio`` of the frame.
    """

    penalty_k: float = 0.04
    lr: float = 0.3
    base_size: int = 8
    anchor_stride: int = 8
    anchor_ratios: Tuple[float, ...] = (0.33, 0.5, 1.0, 2.0, 3.0)
    anchor_scales: Tuple[float, ...] = (8.0,)
    min_size: float = 10.0
    adaptive_instance_size: Optional[int] = None
    adaptive_area_ratio: float = 0.004

    def score_size(self, instance_size: Optional[int] = None) -> int:
        """Side of the response map for a search region of ``instance_size`` pixels."""
        size = self.instance_size if instance_size is None else instance_size
        return (size - self.exemplar_size) // self.anchor_stride + 1 + self.base_size


@dataclass(frozen=True)
class NanoTrackParams(TrackingParams):
    """NanoTrack's anchor-free decoding (one box per response-map point)."""

    penalty_k: float = 0.15
    lr: float = 0.385
    point_stride: int = 16
    score_size: int = 16
    min_size: float = 10.0


PARAMS_BY_FAMILY: Mapping[str, Type[TrackingParams]] = {
    "siamfc": SiamFCParams,
    "siamrpn": SiamRPNParams,
    "nanotrack": NanoTrackParams,
}


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines one named model: layout, hyper-parameters, provenance."""

    name: str
    family: str
    network: NetworkConfig
    tracking: TrackingParams
    description: str = ""
    source: str = ""
    license: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        expected = PARAMS_BY_FAMILY[self.family]
        if type(self.tracking) is not expected:
            raise TypeError(
                f"model {self.name!r} of family {self.family!r} needs {expected.__name__}, "
                f"got {type(self.tracking).__name__}"
            )

    def with_tracking(self, **overrides: Any) -> "ModelConfig":
        """A copy with some tracking hyper-parameters replaced (names are checked)."""
        if not overrides:
            return self
        known = {f.name for f in dataclasses.fields(self.tracking)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(
                f"unknown hyper-parameter(s) {', '.join(unknown)} for model {self.name!r}; "
                f"known: {', '.join(sorted(known))}"
            )
        return dataclasses.replace(self, tracking=dataclasses.replace(self.tracking, **overrides))

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-compatible dict (tuples become lists)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`."""
        try:
            family = data["family"]
            params_cls = PARAMS_BY_FAMILY[family]
            network = NetworkConfig(**data["network"])
            tracking = params_cls(**_tuples_for(params_cls, data["tracking"]))
            rest = {k: data[k] for k in ("description", "source", "license") if k in data}
            return cls(name=data["name"], family=family, network=network, tracking=tracking, **rest)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a valid model config dict: {exc}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _tuples_for(params_cls: Type[TrackingParams], values: Mapping[str, Any]) -> Dict[str, Any]:
    tuple_fields = {
        f.name for f in dataclasses.fields(params_cls) if str(f.type).startswith("Tuple")
    }
    return {k: tuple(v) if k in tuple_fields and v is not None else v for k, v in values.items()}
