"""Configuration dataclasses: a network layout plus the tracker hyper-parameters.

Configs are immutable values that serialize to plain dicts (``to_dict`` / ``from_dict``),
so two models with different settings can live in one process and a config can be written
next to an exported model. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Dict, Iterator, Mapping, Optional, Tuple, Type

from .conventions import convention
from .registry import Entry


class FrozenDict(Mapping[str, Any]):
    """A read-only, hashable mapping; nested dicts become ``FrozenDict`` and lists tuples, so
    a config holding one cannot be changed after it is built (no copies needed to protect it)."""

    def __init__(self, data: Mapping[str, Any] = ()) -> None:
        self._data = {str(key): _freeze(value) for key, value in dict(data).items()}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return value if isinstance(value, FrozenDict) else FrozenDict(value)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


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
    backbone_kwargs: Mapping[str, Any] = field(default_factory=FrozenDict)
    neck: Optional[str] = None
    neck_kwargs: Mapping[str, Any] = field(default_factory=FrozenDict)
    apply_neck: bool = True
    head_kwargs: Mapping[str, Any] = field(default_factory=FrozenDict)
    input_order: str = "bgr"
    published_prefixes: Mapping[str, str] = field(default_factory=FrozenDict)

    def __post_init__(self) -> None:
        for name in ("backbone_kwargs", "neck_kwargs", "head_kwargs", "published_prefixes"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise ValueError(f"{name} must be a mapping, got {type(value).__name__}")
            object.__setattr__(self, name, _freeze(value))
        if self.input_order not in ("bgr", "rgb"):
            raise ValueError(f"input_order must be 'bgr' or 'rgb', got {self.input_order!r}")


@dataclass(frozen=True)
class TrackingParams:
    """Hyper-parameters shared by every tracking loop.

    ``lost_threshold``: ``TrackResult.lost`` is true when the frame's score (in [0, 1])
    falls below it (or while the tracker searches).

    Long-term tracking (``long_term=True``, :class:`~tracker.loops.LongTermLoop`): below
    ``hold_threshold`` (``None``: ``lost_threshold``) the state stays at the last confident
    one, its centre following the frame's best candidate only when that scores at least
    ``move_threshold``. After
    ``redetect_after`` such frames in a row the loop searches: each frame it scores crops at
    the held centre at the held size times each of ``redetect_scales``, plus
    ``redetect_tiles`` crops tiling the frame (spaced by ``redetect_spacing`` of a search
    side, nearest first, going round), all in one network call, and takes the best candidate
    back when it scores at least ``redetect_threshold``.

    ``center_bias``: ``(x, y)`` in frame pixels that the network places boxes right of
    and below the target (its training crops were cut with another convention than its
    tracking crops); the loop subtracts it from every located centre. 0 for networks trained
    by this library.

    ``convention``: the name of the reference geometry rules the checkpoint's
    hyper-parameters were tuned with (crop origin, padding rounding, centre clipping, grid
    origin; :mod:`tracker.conventions`); they differ by half pixels.
    """

    exemplar_size: int = 127
    instance_size: int = 255
    context_amount: float = 0.5
    window_influence: float = 0.4
    lost_threshold: float = 0.5
    long_term: bool = False
    hold_threshold: Optional[float] = None
    move_threshold: float = 0.5
    redetect_after: int = 20
    redetect_threshold: float = 0.9
    redetect_scales: Tuple[float, ...] = (1.0, 0.7)
    redetect_tiles: int = 2
    redetect_spacing: float = 0.5
    center_bias: Tuple[float, float] = (0.0, 0.0)
    convention: str = "pysot"

    _LIMITS: ClassVar[Mapping[str, "_Limit"]] = {
        "exemplar_size": "positive",
        "instance_size": "positive",
        "context_amount": "positive",
        "window_influence": "unit",
        "lost_threshold": "unit",
        "long_term": "flag",
        "hold_threshold": "unit",
        "move_threshold": "unit",
        "redetect_after": "non-negative",
        "redetect_threshold": "unit",
        "redetect_scales": "positive",
        "redetect_tiles": "non-negative",
        "redetect_spacing": "unit-positive",
        "center_bias": "finite",
    }

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            if spec.name != "convention":
                checked = _checked(spec.name, getattr(self, spec.name), str(spec.type),
                                   self._limit(spec.name))
                object.__setattr__(self, spec.name, checked)
        convention(self.convention)
        if self.instance_size < self.exemplar_size:
            raise ValueError(
                "instance_size must be at least exemplar_size, got "
                f"{self.instance_size} and {self.exemplar_size}"
            )
        if len(self.center_bias) != 2:
            raise ValueError(f"center_bias must be two numbers (x, y), got {self.center_bias!r}")
        if self.long_term and self.redetect_threshold < self.hold_below:
            raise ValueError(
                "redetect_threshold must be at least hold_threshold (or lost_threshold when that "
                "is None): a re-detection needs more evidence than tracking; got "
                f"{self.redetect_threshold} and {self.hold_below}"
            )

    @property
    def hold_below(self) -> float:
        """The score under which a long-term tracker holds the box."""
        return self.lost_threshold if self.hold_threshold is None else self.hold_threshold

    @classmethod
    def _limit(cls, name: str) -> "_Limit":
        for klass in cls.__mro__:
            limits = klass.__dict__.get("_LIMITS", {})
            if name in limits:
                return limits[name]
        raise AssertionError(f"{cls.__name__}.{name} has no declared range")


#: Ranges a hyper-parameter may take: ``"positive"`` (> 0), ``"non-negative"`` (>= 0),
#: ``"unit"`` ([0, 1]), ``"unit-positive"`` ((0, 1]), ``"finite"`` (any finite number),
#: ``"flag"`` (a bool).
_Limit = str
_RANGES = {
    "positive": (lambda v: v > 0, "> 0"),
    "non-negative": (lambda v: v >= 0, ">= 0"),
    "unit": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "unit-positive": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "finite": (lambda v: True, "(any sign)"),
}


def _checked(name: str, value: Any, annotation: str, limit: _Limit) -> Any:
    """``value`` as its field's type (ints stay ints, reals become floats), or a ``ValueError``
    naming the field, what it must be and what it got."""
    if annotation.startswith("Optional[") and value is None:
        return None
    inner = annotation[len("Optional["):-1] if annotation.startswith("Optional[") else annotation
    if inner.startswith("Tuple["):
        if not isinstance(value, (tuple, list)) or not value:
            raise ValueError(f"{name} must be a non-empty sequence of numbers, got {value!r}")
        return tuple(_checked(name, v, "float", limit) for v in value)
    if limit == "flag":
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
        return value
    in_range, wanted = _RANGES[limit]
    if inner == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an int {wanted}, got {value!r} ({type(value).__name__})")
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(
            f"{name} must be a finite number {wanted}, got {value!r} ({type(value).__name__})"
        )
    else:
        value = float(value)
    if not in_range(value):
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return value


def check_limits(settings: Any, limits: Mapping[str, _Limit], section: str = "") -> None:
    """Type- and range-check the fields of a frozen dataclass named in ``limits`` (ints stay
    ints, reals become floats), in place; the ``ValueError`` names ``section.field``."""
    prefix = f"{section}." if section else ""
    for spec in dataclasses.fields(settings):
        if spec.name in limits:
            value = _checked(prefix + spec.name, getattr(settings, spec.name), str(spec.type),
                             limits[spec.name])
            object.__setattr__(settings, spec.name, value)


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

    _LIMITS: ClassVar[Mapping[str, _Limit]] = {
        "scale_num": "positive",
        "scale_step": "positive",
        "scale_lr": "unit",
        "scale_penalty": "unit-positive",
        "response_size": "positive",
        "response_upsample": "positive",
        "total_stride": "positive",
        "min_size": "non-negative",
    }


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

    _LIMITS: ClassVar[Mapping[str, _Limit]] = {
        "penalty_k": "non-negative",
        "lr": "unit",
        "base_size": "non-negative",
        "anchor_stride": "positive",
        "anchor_ratios": "positive",
        "anchor_scales": "positive",
        "min_size": "non-negative",
        "adaptive_instance_size": "positive",
        "adaptive_area_ratio": "unit",
    }

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

    _LIMITS: ClassVar[Mapping[str, _Limit]] = {
        "penalty_k": "non-negative",
        "lr": "unit",
        "point_stride": "positive",
        "score_size": "positive",
        "min_size": "non-negative",
    }


@dataclass(frozen=True)
class Family:
    """One head family: its hyper-parameter class, its tracking loop (imported when a tracker
    is built, so configs stay free of numpy-heavy code) and what the loop decodes."""

    params: Type[TrackingParams]
    loop: Entry
    decoding: str


#: The head families. A new family is its loop module (and its params class) plus one line here.
FAMILIES: Mapping[str, Family] = MappingProxyType({
    "siamfc": Family(
        SiamFCParams, Entry("tracker.loops.siamfc:SiamFCLoop"),
        "one correlation map per scale, upsampled; the peak moves the box, the best scale sizes it",
    ),
    "siamrpn": Family(
        SiamRPNParams, Entry("tracker.loops.proposals:SiamRPNLoop"),
        "anchors: per map point and anchor a foreground score and four box deltas",
    ),
    "nanotrack": Family(
        NanoTrackParams, Entry("tracker.loops.proposals:NanoTrackLoop"),
        "points: per map point a foreground score and the distances to the four box sides",
    ),
})


@dataclass(frozen=True)
class ModelConfig:
    """What defines one model: its layout and tracking hyper-parameters. Where its weights
    come from and under which licence is the model's record in :mod:`tracker.zoo`."""

    name: str
    family: str
    network: NetworkConfig
    tracking: TrackingParams
    description: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {tuple(FAMILIES)}, got {self.family!r}")
        expected = FAMILIES[self.family].params
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
            params_cls = FAMILIES[family].params
            network = NetworkConfig(**data["network"])
            tracking = params_cls(**_tuples_for(params_cls, data["tracking"]))
            # "source" and "license" were config fields before the model records held them;
            # exports written then still carry them.
            return cls(name=data["name"], family=family, network=network, tracking=tracking,
                       description=data.get("description", ""))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a valid model config dict: {exc}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _tuples_for(params_cls: Type[TrackingParams], values: Mapping[str, Any]) -> Dict[str, Any]:
    tuple_fields = {
        f.name for f in dataclasses.fields(params_cls) if str(f.type).startswith("Tuple")
    }
    return {k: tuple(v) if k in tuple_fields and v is not None else v for k, v in values.items()}
