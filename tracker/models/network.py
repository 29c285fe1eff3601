"""The Siamese network: backbone, optional neck, head; stateless template/track API."""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from ..config import ModelConfig, NetworkConfig
from ..errors import CheckpointError
from ..zoo import get_config
from .catalog import BACKBONES, HEADS, NECKS
from .checkpoint import extract_state_dict, read_checkpoint

Kernel = Tuple[torch.Tensor, ...]
_UNUSED_BUFFER_SUFFIX = "num_batches_tracked"


class SiameseNetwork(nn.Module):
    """A tracker's network, holding no per-target state.

    ``template(z)`` turns exemplar crops into a kernel (a tuple of tensors);
    ``track(kernel, x)`` scores search crops against it. One network can serve any number
    of targets and threads. ``state_dict()`` and ``load_weights`` use the key layout of
    the published checkpoints.
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = BACKBONES.build(config.backbone, **config.backbone_kwargs)
        self.neck = NECKS.build(config.neck, **config.neck_kwargs) if config.neck else None
        self.head = HEADS.build(config.head, **config.head_kwargs)
        self._renames = sorted(config.published_prefixes.items(), key=lambda kv: -len(kv[0]))
        self.register_state_dict_post_hook(_to_published)
        self.register_load_state_dict_pre_hook(_to_internal)
        self.eval()

    def _features(self, images: torch.Tensor, is_template: bool) -> Any:
        features = self.backbone(images)
        if self.neck is not None and self.config.apply_neck:
            features = self.neck(features, is_template)
        return features

    @torch.no_grad()
    def template(self, z: torch.Tensor) -> Kernel:
        """Kernel for exemplar crops ``z`` (N x 3 x Hz x Wz float, 0..255)."""
        return tuple(self.head.prepare(self._features(_check_images(z, "z"), True)))

    @torch.no_grad()
    def track(self, kernel: Kernel, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Head outputs for search crops ``x`` (N x 3 x Hx x Wx) against ``kernel``."""
        return self.head(tuple(kernel), self._features(_check_images(x, "x"), False))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Head outputs for the pairs ``(z[i], x[i])`` with autograd on: a training step.

        The same backbone, neck and head as :meth:`template` + :meth:`track`, one kernel per
        pair (``z`` and ``x`` have the same batch size).
        """
        z, x = _check_images(z, "z"), _check_images(x, "x")
        if z.shape[0] != x.shape[0]:
            raise ValueError(f"z and x must hold the same number of pairs, got {z.shape[0]} and {x.shape[0]}")
        kernel = tuple(self.head.prepare(self._features(z, True)))
        return self.head(kernel, self._features(x, False))

    def load_weights(
        self, source: Union[str, "os.PathLike[str]", Mapping[str, torch.Tensor]]
    ) -> "SiameseNetwork":
        """Load a published checkpoint (path or state dict), strictly.

        Raises :class:`~tracker.CheckpointError` listing missing keys, unexpected keys and
        shape mismatches. ``num_batches_tracked`` buffers (absent from checkpoints saved by
        old torch versions, unused in eval mode) may be missing.
        """
        if isinstance(source, Mapping):
            state, origin = extract_state_dict(source), "state dict"
        else:
            state, origin = read_checkpoint(source), os.fspath(source)
        expected = self.state_dict()
        problems = _compare(expected, state)
        if problems:
            raise CheckpointError(f"{origin} does not fit this model: " + "; ".join(problems))
        complete = OrderedDict(
            (key, state.get(key, expected[key])) for key in expected
        )
        self.load_state_dict(complete, strict=True)
        return self


def _check_images(images: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{name} must be an N x 3 x H x W float tensor, got {shape}")
    if not images.is_floating_point():
        raise ValueError(f"{name} must be a float tensor, got {images.dtype}")
    return images


def _compare(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]) -> List[str]:
    missing = [
        k for k in expected if k not in given and not k.endswith(_UNUSED_BUFFER_SUFFIX)
    ]
    unexpected = [k for k in given if k not in expected]
    mismatched = [
        f"{k} {tuple(given[k].shape)} vs {tuple(expected[k].shape)}"
        for k in expected
        if k in given and given[k].shape != expected[k].shape
    ]
    problems = []
    for label, items in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("shape mismatches (file vs model)", mismatched),
    ):
        if items:
            shown = ", ".join(items[:10]) + (f", ... ({len(items) - 10} more)" if len(items) > 10 else "")
            problems.append(f"{len(items)} {label}: {shown}")
    return problems


def _rename(state: Dict[str, Any], prefix: str, renames: List[Tuple[str, str]]) -> None:
    """Rename keys below ``prefix`` in place, keeping their order."""
    items = list(state.items())
    state.clear()
    for key, value in items:
        if key.startswith(prefix):
            local = key[len(prefix):]
            for old, new in renames:
                if local.startswith(old):
                    key = prefix + new + local[len(old):]
                    break
        state[key] = value


def _to_published(module: SiameseNetwork, state: Dict[str, Any], prefix: str, _meta: Any) -> None:
    _rename(state, prefix, module._renames)


def _to_internal(module: SiameseNetwork, state: Dict[str, Any], prefix: str, *_: Any) -> None:
    inverse = sorted(((new, old) for old, new in module._renames), key=lambda kv: -len(kv[0]))
    _rename(state, prefix, inverse)


def build_model(
    model: Union[str, ModelConfig, NetworkConfig],
    device: Optional[Union[str, torch.device]] = None,
) -> SiameseNetwork:
    """An eval-mode network for a model name (see ``tracker.list_models()``) or config.

    ``device``: where the weights live (``"cpu"``, ``"cuda:0"``, a ``torch.device``); raises
    ``ValueError`` for a name torch does not know or a device this machine does not have.
    """
    if isinstance(model, str):
        model = get_config(model)
    network_config = model.network if isinstance(model, ModelConfig) else model
    network = SiameseNetwork(network_config)
    return network.to(as_device(device)) if device is not None else network


def as_device(device: Union[str, torch.device]) -> torch.device:
    """``device`` as a ``torch.device`` that exists here (``ValueError`` naming it otherwise)."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device must be a torch device such as 'cpu' or 'cuda:0', got {device!r} ({error})"
        ) from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (resolved.index or 0) >= count:
            raise ValueError(
                f"device {device!r} is not available: this machine has {count} usable CUDA "
                "device(s) (or this torch build has no CUDA); use device='cpu'"
            )
    elif resolved.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {device!r} is not available on this machine; use 'cpu'")
    elif resolved.type != "cpu":
        raise ValueError(f"device {device!r} is not supported; use 'cpu', 'cuda:N' or 'mps'")
    return resolved
