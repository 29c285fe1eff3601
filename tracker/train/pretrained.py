"""Starting a training run from an ImageNet backbone checkpoint, as the references do.

pysot starts from ``alexnet-bn.pth``, ``resnet50.model`` or its MobileNetV2 file, NanoTrack from
``mobilenetv3_small_1.0.pth``. Those files hold the backbone's modules under the names the
references' backbone classes give them, plus what only an ImageNet classifier needs
(``fc.*``, ``classifier.*``, the layers past the tracker's cut), and are loaded non-strictly
into the backbone. Here the same file is matched against ``network.backbone``: what fits is
loaded, what the file lacks keeps its initial value and is reported, the rest is ignored, and a
file that holds too little of the backbone is refused as the wrong file.

Key layouts recognised, after a ``module.`` (DataParallel) and a ``backbone.`` prefix are
removed: the backbone's own names (also those of the published tracker checkpoints, e.g.
DaSiamRPN's ``featureExtract.``); names without the ``features.`` prefix (pysot's fallback);
and, for the AlexNet of pysot's published models (one ``features`` sequence), the ``layer1`` ...
``layer5`` blocks of pysot's training AlexNet, whose checkpoint its AlexNet recipes start from.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch

from ..errors import CheckpointError
from ..models.backbones.alexnet import AlexNetLegacy
from ..models.checkpoint import read_checkpoint
from ..models.network import SiameseNetwork

PathLike = Union[str, "os.PathLike[str]"]

_COUNTER_SUFFIX = "num_batches_tracked"  # BatchNorm counters: absent from old files, unused
_EXAMPLES = 5

#: Where each block of pysot's training AlexNet (``layerN.i``) sits in the single ``features``
#: sequence of its published AlexNet: both hold the same convolutions and BatchNorms in order.
_ALEXNET_BLOCK_START = {1: 0, 2: 4, 3: 8, 4: 11, 5: 14}
_ALEXNET_BLOCK = re.compile(r"layer([1-5])\.(\d+)\.(.*)")


@dataclass(frozen=True)
class BackboneLoad:
    """What :func:`load_backbone_weights` did: ``loaded`` backbone tensors copied from ``path``,
    the backbone's tensors the file lacks (``missing``, left as they were) and the file's keys
    that are not the backbone's (``ignored``). BatchNorm ``num_batches_tracked`` counters are
    not counted."""

    path: str
    loaded: int
    missing: Tuple[str, ...]
    ignored: Tuple[str, ...]

    def summary(self) -> str:
        """One line for the training log."""
        line = f"backbone weights from {self.path}: {self.loaded} tensors loaded"
        if self.missing:
            line += f", {len(self.missing)} missing (left at their initial values)"
        if self.ignored:
            line += f", {len(self.ignored)} of the file ignored ({_examples(self.ignored)})"
        return line


def load_backbone_weights(network: SiameseNetwork, path: PathLike) -> BackboneLoad:
    """Copy the tensors of an ImageNet (or tracker) checkpoint at ``path`` into
    ``network.backbone``.

    Raises ``FileNotFoundError`` for a missing file, :class:`~tracker.CheckpointError` for a
    file that is not a clean weights file, a tensor whose name fits but whose shape does not
    (naming both shapes), or a file that holds fewer than half of the backbone's tensors.
    """
    if not isinstance(network, SiameseNetwork):
        raise TypeError(f"network must be a SiameseNetwork, got {type(network).__name__}")
    origin = os.fspath(path)
    state = read_checkpoint(path)
    backbone = network.backbone.state_dict()
    counted = [key for key in backbone if not key.endswith(_COUNTER_SUFFIX)]
    names = _backbone_names(network, state)
    found = [key for key in counted if key in names.values()]
    if 2 * len(found) < len(counted):
        raise CheckpointError(
            f"{origin} holds {len(found)} of the {len(counted)} tensors of the "
            f"{network.config.backbone!r} backbone, fewer than half: it is not a checkpoint of "
            f"this backbone (file keys: {_examples(list(state))}; backbone keys: "
            f"{_examples(counted)})"
        )
    for file_key, key in names.items():
        given, expected = state[file_key].shape, backbone[key].shape
        if given != expected:
            named = repr(file_key) if file_key == key else f"{file_key!r} (backbone {key!r})"
            raise CheckpointError(
                f"{origin}: tensor {named} has shape {tuple(given)} in the file but "
                f"{tuple(expected)} in the {network.config.backbone!r} backbone"
            )
    merged = dict(backbone)
    merged.update({key: state[file_key] for file_key, key in names.items()})
    network.backbone.load_state_dict(merged, strict=True)
    return BackboneLoad(
        path=origin,
        loaded=len(found),
        missing=tuple(key for key in counted if key not in names.values()),
        ignored=tuple(key for key in state if key not in names),
    )


def _backbone_names(network: SiameseNetwork, state: Mapping[str, torch.Tensor]) -> Dict[str, str]:
    """``{file key: backbone key}`` under the layout that names the most backbone tensors."""
    backbone = network.backbone.state_dict()
    published = [
        (prefix, internal[len("backbone."):])
        for internal, prefix in network.config.published_prefixes.items()
        if internal.startswith("backbone.") and prefix
    ]
    layouts: List[Callable[[str], Optional[str]]] = [lambda key: key, lambda key: "features." + key]
    if isinstance(network.backbone, AlexNetLegacy):
        layouts.append(_alexnet_block_name)
    best: Dict[str, str] = {}
    for layout in layouts:
        names = {}
        for file_key in state:
            name = layout(_local_name(file_key, published))
            if name is not None and name in backbone:
                names[file_key] = name
        if len(names) > len(best):
            best = names
    return best


def _local_name(key: str, published: List[Tuple[str, str]]) -> str:
    """``key`` without DataParallel's ``module.`` and the network's ``backbone.`` prefix, with a
    published checkpoint's backbone prefix (``featureExtract.``) turned into the module's."""
    while key.startswith("module."):
        key = key[len("module."):]
    for prefix, local in published:
        if key.startswith(prefix):
            return local + key[len(prefix):]
    return key[len("backbone."):] if key.startswith("backbone.") else key


def _alexnet_block_name(key: str) -> Optional[str]:
    match = _ALEXNET_BLOCK.fullmatch(key)
    if match is None:
        return None
    block, index, rest = int(match.group(1)), int(match.group(2)), match.group(3)
    return f"features.{_ALEXNET_BLOCK_START[block] + index}.{rest}"


def _examples(keys: Union[List[str], Tuple[str, ...]]) -> str:
    shown = ", ".join(keys[:_EXAMPLES])
    return shown + (f", ... ({len(keys) - _EXAMPLES} more)" if len(keys) > _EXAMPLES else "")
