"""MobileNetV3-Small cut at stride 16, as NanoTrack trains it (key layout ``features.*``)."""

from __future__ import annotations

from typing import Dict, NamedTuple, Tuple

import torch
from torch import nn


class _Block(NamedTuple):
    """One inverted-residual block of the table below."""

    kernel_size: int
    expanded: int
    out_channels: int
    se_channels: int  # 0: no squeeze-and-excite
    hard_swish: bool  # False: ReLU
    stride: int


_STEM_CHANNELS = 16

_BLOCKS: Tuple[_Block, ...] = (
    _Block(3, 16, 16, 8, False, 2),
    _Block(3, 72, 24, 0, False, 2),
    _Block(3, 88, 24, 0, False, 1),
    _Block(5, 96, 40, 24, True, 2),
    _Block(5, 240, 40, 64, True, 1),
    _Block(5, 240, 40, 64, True, 1),
    _Block(5, 120, 48, 32, True, 1),
    _Block(5, 144, 48, 40, True, 1),
)

#: Extra blocks after the common ones, by output width (NanoTrack v3 adds one 96-wide block).
_EXTRA_BLOCKS: Dict[int, Tuple[_Block, ...]] = {
    48: (),
    96: (_Block(5, 288, 96, 72, True, 1),),
}


class SqueezeExcite(nn.Module):
    """Channel gating: global mean -> Linear -> ReLU -> Linear -> hard-sigmoid -> scale."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, reduced),
            nn.ReLU(inplace=True),
            nn.Linear(reduced, channels),
            nn.Hardsigmoid(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc(x.mean(dim=(2, 3)))
        return x * gate[:, :, None, None]


def _activation(hard_swish: bool) -> nn.Module:
    return nn.Hardswish(inplace=True) if hard_swish else nn.ReLU(inplace=True)


def _depthwise(channels: int, kernel_size: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, kernel_size, stride, (kernel_size - 1) // 2,
                     groups=channels, bias=False)


class InvertedResidual(nn.Module):
    """MobileNetV3 block; without an expansion conv when the expansion equals the input.

    With expansion the activation after the depthwise conv follows the squeeze-and-excite,
    as in the trained checkpoints (their ``conv`` indices depend on this order).
    """

    def __init__(self, in_channels: int, block: _Block) -> None:
        super().__init__()
        hidden = block.expanded
        gate = SqueezeExcite(hidden, block.se_channels) if block.se_channels else nn.Identity()
        layers = [] if hidden == in_channels else [
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            _activation(block.hard_swish),
        ]
        layers += [_depthwise(hidden, block.kernel_size, block.stride), nn.BatchNorm2d(hidden)]
        if hidden == in_channels:
            layers += [_activation(block.hard_swish), gate]
        else:
            layers += [gate, _activation(block.hard_swish)]
        layers += [nn.Conv2d(hidden, block.out_channels, 1, bias=False),
                   nn.BatchNorm2d(block.out_channels)]
        self.conv = nn.Sequential(*layers)
        self.residual = block.stride == 1 and in_channels == block.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.residual else out


class MobileNetV3Small(nn.Module):
    """NanoTrack's backbone: 127 -> 8x8 and 255 -> 16x16 maps of ``out_channels`` (48 or 96).

    Input: N x 3 x H x W raw pixel values (0..255, no normalisation), as NanoTrack trained it.
    """

    def __init__(self, out_channels: int = 48) -> None:
        super().__init__()
        if out_channels not in _EXTRA_BLOCKS:
            raise ValueError(
                f"out_channels must be one of {sorted(_EXTRA_BLOCKS)}, got {out_channels!r}"
            )
        layers = [nn.Sequential(
            nn.Conv2d(3, _STEM_CHANNELS, 3, 2, 1, bias=False),
            nn.BatchNorm2d(_STEM_CHANNELS),
            nn.Hardswish(inplace=True),
        )]
        channels = _STEM_CHANNELS
        for block in _BLOCKS + _EXTRA_BLOCKS[out_channels]:
            layers.append(InvertedResidual(channels, block))
            channels = block.out_channels
        self.features = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
