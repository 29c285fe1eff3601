"""Dilated ResNet-50 of pysot's SiamRPN++ (``resnet_atrous`` layout, overall stride 8).

Stages 3 and 4 trade their stride for dilation (2 and 4), so every used level of a
127-pixel exemplar is 15x15 and of a 255-pixel search region 31x31. The unpadded stem
and the unpadded stride-2 convolutions of stage 2 are part of the published weights'
geometry and are kept as they are.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Union

import torch
from torch import nn

_STAGE_BLOCKS = (3, 4, 6, 3)
_EXPANSION = 4


def check_used_layers(used_layers: Sequence[int], num_levels: int) -> List[int]:
    """``used_layers`` as a list, after checking each names one of ``num_levels`` outputs."""
    levels = list(used_layers) if isinstance(used_layers, (list, tuple)) else []
    if not levels or any(
        isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < num_levels
        for level in levels
    ):
        raise ValueError(
            f"used_layers must be a non-empty list of ints in 0..{num_levels - 1}, got {used_layers!r}"
        )
    return levels


def pick_outputs(
    outputs: Sequence[torch.Tensor], levels: Sequence[int]
) -> Union[torch.Tensor, List[torch.Tensor]]:
    """The requested levels: one tensor when one level is used, otherwise a list."""
    picked = [outputs[level] for level in levels]
    return picked[0] if len(picked) == 1 else picked


def _conv_bn(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
    dilation: int = 1,
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, dilation=dilation, bias=False
        ),
        nn.BatchNorm2d(out_channels),
    )


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided or dilated), 1x1 expand, plus the shortcut.

    pysot pads the 3x3 convolution by ``2 - stride`` (none when strided) or by its
    dilation; a stage's first block, which carries the projection shortcut, uses half the
    stage dilation.
    """

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: Optional[nn.Module] = None,
    ) -> None:
        super().__init__()
        if downsample is not None and dilation > 1:
            dilation //= 2
        padding = dilation if dilation > 1 else 2 - stride
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, 3, stride, padding, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * _EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * _EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def _stage(
    in_channels: int, planes: int, blocks: int, stride: int = 1, dilation: int = 1
) -> nn.Sequential:
    """A stage of bottlenecks; its first block projects the shortcut when shapes change.

    The projection is a 1x1 convolution only for the plain stage 1; the strided stage 2
    uses an unpadded 3x3 convolution, and the dilated stages a 3x3 convolution with half
    the stage dilation, padded by that dilation.
    """
    out_channels = planes * _EXPANSION
    downsample = None
    if stride != 1 or in_channels != out_channels:
        if stride == 1 and dilation == 1:
            downsample = _conv_bn(in_channels, out_channels, 1)
        else:
            half = max(dilation // 2, 1)
            padding = half if dilation > 1 else 0
            downsample = _conv_bn(in_channels, out_channels, 3, stride, padding, half)
    layers = [Bottleneck(in_channels, planes, stride, dilation, downsample)]
    layers += [Bottleneck(out_channels, planes, dilation=dilation) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class ResNet50(nn.Module):
    """pysot's dilated ResNet-50; ``forward`` returns the outputs of ``used_layers``.

    Level 0 is the stem (after its ReLU, before max-pooling) and levels 1..4 the four
    stages. Stages 3 and 4 are built only when used, as in pysot; an unused one passes
    its input through.
    """

    def __init__(self, used_layers: Sequence[int] = (2, 3, 4)) -> None:
        super().__init__()
        self.used_layers = check_used_layers(used_layers, 5)
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _stage(64, 64, _STAGE_BLOCKS[0])
        self.layer2 = _stage(64 * _EXPANSION, 128, _STAGE_BLOCKS[1], stride=2)
        channels = 128 * _EXPANSION
        self.layer3: nn.Module = nn.Identity()
        self.layer4: nn.Module = nn.Identity()
        if 3 in self.used_layers:
            self.layer3 = _stage(channels, 256, _STAGE_BLOCKS[2], dilation=2)
            channels = 256 * _EXPANSION
        if 4 in self.used_layers:
            self.layer4 = _stage(channels, 512, _STAGE_BLOCKS[3], dilation=4)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, List[torch.Tensor]]:
        stem = self.relu(self.bn1(self.conv1(x)))
        outputs = [stem]
        x = self.maxpool(stem)
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4)[: max(self.used_layers)]:
            x = stage(x)
            outputs.append(x)
        return pick_outputs(outputs, self.used_layers)
