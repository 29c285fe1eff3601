"""Training recipes: every setting of a training run, one frozen value per family.

The defaults are the references' recipes (``fixtures/training/README.md`` in the shared
folder): siamfc-pytorch for SiamFC, pysot for the RPN models, NanoTrack's ``configv2.yaml`` for
NanoTrack. A recipe serializes to a plain dict (``to_dict`` / ``from_dict``), is written into
every checkpoint, and any field can be replaced by a dotted key (``optim.batch_size=16``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple, Type, TypeVar, Union

from ..config import check_limits
from ..zoo import get_config
from .data.augment import AugmentSettings
from .data.pairs import PairSettings
from .schedules import ScheduleSettings
from .objectives import TargetSettings

T = TypeVar("T")


@dataclass(frozen=True)
class OptimSettings:
    """SGD, batch, gradient clipping, loss weights and which backbone layers learn when.

    ``backbone_train_epoch``: the backbone is frozen (no gradient, BatchNorm in eval mode)
    before this 0-based epoch; from it on, the modules ``backbone_layers`` (paths inside the
    backbone, ``""`` for all of it, none when empty) learn at ``backbone_lr_mult`` x the learning rate.
    ``freeze_bn``: BatchNorm statistics stay as loaded in every layer (fine-tuning with small
    batches; distributed runs that must match a single process). ``grad_clip``: maximum
    gradient norm, 0 for none. ``init``: how a network without ``--init-weights`` starts
    (``"kaiming"``: siamfc-pytorch's Kaiming-normal convolutions; ``"default"``: torch's).
    ``amp``: mixed precision (autocast float16 with a gradient scaler on CUDA, bfloat16 on CPU).
    """

    batch_size: int = 32
    pairs_per_epoch: int = 600000
    momentum: float = 0.9
    weight_decay: float = 1e-4
    grad_clip: float = 10.0
    cls_weight: float = 1.0
    loc_weight: float = 1.0
    backbone_train_epoch: int = 10
    backbone_layers: Tuple[str, ...] = ("",)
    backbone_lr_mult: float = 0.1
    freeze_bn: bool = False
    init: str = "default"
    amp: bool = False

    _LIMITS: ClassVar[Mapping[str, str]] = {
        "batch_size": "positive", "pairs_per_epoch": "positive", "momentum": "non-negative",
        "weight_decay": "non-negative", "grad_clip": "non-negative",
        "cls_weight": "non-negative", "loc_weight": "non-negative",
        "backbone_train_epoch": "non-negative", "backbone_lr_mult": "non-negative",
    }

    def __post_init__(self) -> None:
        check_limits(self, self._LIMITS, "optim")
        if self.init not in ("default", "kaiming"):
            raise ValueError(f"optim.init must be 'default' or 'kaiming', got {self.init!r}")
        object.__setattr__(self, "backbone_layers", tuple(str(v) for v in self.backbone_layers))


@dataclass(frozen=True)
class Recipe:
    """Everything a training run does besides its data: pairs, crops, targets, optimiser."""

    family: str
    pairs: PairSettings
    augment: AugmentSettings
    targets: TargetSettings
    schedule: ScheduleSettings
    optim: OptimSettings

    def __post_init__(self) -> None:
        if self.family == "siamfc" and self.pairs.negative_ratio > 0:
            raise ValueError(
                f"pairs.negative_ratio is {self.pairs.negative_ratio} but SiamFC's label maps "
                "assume the target at the centre of every search crop (siamfc-pytorch draws no "
                "negative pairs); use 0")

    @property
    def epochs(self) -> int:
        return self.schedule.epochs

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-compatible dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Recipe":
        """Inverse of :meth:`to_dict`; unknown or missing keys are a ``ValueError`` naming them."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a recipe must be a mapping, got {type(data).__name__}")
        expected = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - expected)
        if unknown:
            raise ValueError(f"unknown recipe section(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(expected))}")
        missing = sorted(expected - set(data))
        if missing:
            raise ValueError(f"recipe lacks section(s) {', '.join(missing)}")
        parts = {f.name: _section(f.name, _section_types()[f.name], data[f.name])
                 for f in dataclasses.fields(cls) if f.name != "family"}
        return cls(family=str(data["family"]), **parts)

    def with_overrides(self, overrides: Mapping[str, Any]) -> "Recipe":
        """A copy with dotted fields replaced (``{"optim.batch_size": 16}``); a value given as
        text (from ``--set``) is parsed as JSON first (``16``, ``0.5``, ``true``, ``[1, 2]``)."""
        recipe = self
        for key, value in overrides.items():
            section, _, name = key.partition(".")
            types = _section_types()
            if section not in types or not name:
                raise ValueError(f"--set {key}: the key must be SECTION.FIELD with SECTION one of "
                                 f"{', '.join(types)}")
            current = getattr(recipe, section)
            fields = {f.name: f for f in dataclasses.fields(current)}
            if name not in fields:
                raise ValueError(f"--set {key}: {section} has no field {name!r}; its fields: "
                                 f"{', '.join(fields)}")
            parsed = _parse_value(value) if isinstance(value, str) else value
            if isinstance(getattr(current, name), tuple) and isinstance(parsed, list):
                parsed = tuple(parsed)
            try:
                replaced = dataclasses.replace(current, **{name: parsed})
            except (TypeError, ValueError) as error:
                raise ValueError(f"--set {key}={value}: {error}") from None
            recipe = dataclasses.replace(recipe, **{section: replaced})
        return recipe


def _section_types() -> Dict[str, Type[Any]]:
    return {"pairs": PairSettings, "augment": AugmentSettings, "targets": TargetSettings,
            "schedule": ScheduleSettings, "optim": OptimSettings}


def _section(name: str, kind: Type[T], data: Any) -> T:
    if not isinstance(data, Mapping):
        raise ValueError(f"recipe section {name} must be a mapping, got {type(data).__name__}")
    fields = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"recipe section {name} has unknown field(s) {', '.join(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return kind(**values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"recipe section {name}: {error}") from None


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def default_recipe(model: str, finetune: bool = False) -> Recipe:
    """The reference recipe for ``model``'s family; ``finetune`` adapts it to continuing from
    trained weights (see :func:`finetune_recipe`)."""
    config = get_config(model)
    family = config.family
    if family == "siamfc":
        recipe = Recipe(
            family, PairSettings.siamfc(), AugmentSettings.siamfc(), TargetSettings.siamfc(),
            ScheduleSettings.siamfc(),
            OptimSettings(batch_size=8, pairs_per_epoch=53200, weight_decay=5e-4, grad_clip=0.0,
                          backbone_train_epoch=0, backbone_lr_mult=1.0, init="kaiming"),
        )
    elif family == "siamrpn":
        deep = config.network.backbone in ("resnet50", "mobilenetv2")
        layers = {
            "resnet50": ("layer2", "layer3", "layer4"),
            "mobilenetv2": ("layer3", "layer5", "layer7"),
        }.get(config.network.backbone, _ALEX_TRAIN_LAYERS.get(config.network.backbone, ("",)))
        recipe = Recipe(
            family, PairSettings.pysot(deep=deep), AugmentSettings.pysot(),
            TargetSettings.pysot(), ScheduleSettings.pysot_r50() if deep
            else ScheduleSettings.pysot_alex(),
            OptimSettings(batch_size=28 if deep else 128, pairs_per_epoch=600000,
                          loc_weight=1.2, backbone_layers=layers,
                          backbone_lr_mult=0.1 if deep else 1.0),
        )
    else:
        recipe = Recipe(
            family, PairSettings.nanotrack(), AugmentSettings.nanotrack(),
            TargetSettings.nanotrack(), ScheduleSettings.nanotrack(),
            OptimSettings(batch_size=32, pairs_per_epoch=600000, backbone_layers=("",)),
        )
    recipe = _for_model(recipe, config)
    return finetune_recipe(recipe) if finetune else recipe


#: pysot trains AlexNet's ``layer4`` and ``layer5``; in the published (legacy) layout they are
#: these modules of ``features`` (conv + BN of the fourth and fifth convolution).
_ALEX_TRAIN_LAYERS = {
    "alexnet_legacy": ("features.11", "features.12", "features.14", "features.15"),
    "alexnet_dasiamrpn": ("features.11", "features.12", "features.14", "features.15"),
}


def _for_model(recipe: Recipe, config: Any) -> Recipe:
    """Crop geometry from the model's own tracking parameters (exemplar size, context,
    convention) so that training crops are cut the way the tracker cuts them."""
    params = config.tracking
    augment = dataclasses.replace(
        recipe.augment, exemplar_size=params.exemplar_size,
        context_amount=params.context_amount, convention=params.convention,
    )
    return dataclasses.replace(recipe, augment=augment)


def finetune_recipe(recipe: Recipe) -> Recipe:
    """Continue from trained weights without undoing them.

    The references' recipes start from ImageNet features: a warm-up to their peak learning
    rate, BatchNorm statistics re-estimated from each batch and the backbone unfrozen after
    ten epochs. Applied to a trained tracker with a few thousand pairs, that peak rate and the
    small-batch statistics move the weights far from the published optimum (NanoTrack users
    see fine-tuning make the tracker worse). Fine-tuning therefore keeps every BatchNorm
    statistic, keeps the backbone frozen, and runs at the reference's final learning rate
    without warm-up.
    """
    optim = dataclasses.replace(recipe.optim, freeze_bn=True, backbone_layers=())
    return dataclasses.replace(recipe, optim=optim, schedule=recipe.schedule.finetune())


def load_recipe(path: Union[str, Path]) -> Recipe:
    """A whole recipe from a JSON file (as ``to_dict`` writes it; ``--config FILE``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--config {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"--config {path} is not a JSON recipe: {error}") from None
    return Recipe.from_dict(data)


def resolve_recipe(model: str, finetune: bool, config: Optional[Union[str, Path]] = None,
                   overrides: Optional[Mapping[str, Any]] = None) -> Recipe:
    """The recipe a run uses: ``config`` (a file) or the model's default, then ``overrides``;
    a file written for another family is a ``ValueError``."""
    recipe = load_recipe(config) if config is not None else default_recipe(model, finetune)
    family = get_config(model).family
    if recipe.family != family:
        raise ValueError(f"--config is a {recipe.family} recipe but {model} is a {family} model")
    return recipe.with_overrides(overrides or {})
