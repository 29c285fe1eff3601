"""MobileNetV2 of pysot's SiamRPN++ (``mobile_v2`` layout, overall stride 8).

The last four stages trade their stride for dilation, so levels 3..7 of a 127-pixel
exemplar are 15x15 and of a 255-pixel search region 31x31. The stem and the strided
depthwise convolutions are unpadded, as in the published weights' geometry.
"""

from __future__ import annotations

from typing import List, Sequence, Union

import torch
from torch import nn

from .resnet import check_used_layers, pick_outputs

# Per stage: expansion ratio, output channels (before width_mult), blocks, stride, dilation.
_STAGES = (
    (1, 16, 1, 1, 1),
    (6, 24, 2, 2, 1),
    (6, 32, 3, 2, 1),
    (6, 64, 4, 1, 2),
    (6, 96, 3, 1, 2),
    (6, 160, 3, 1, 4),
    (6, 320, 1, 1, 4),
)


class InvertedResidual(nn.Module):
    """1x1 expansion, 3x3 depthwise, linear 1x1 projection; identity shortcut when shapes keep.

    Unlike torchvision, the expansion convolution exists even for ratio 1 (pysot's
    weights have it). The depthwise convolution is padded by its dilation when dilated,
    otherwise by ``2 - stride``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, expand_ratio: int, dilation: int = 1
    ) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        padding = dilation if dilation > 1 else 2 - stride
        self.use_shortcut = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(
                hidden, hidden, 3, stride, padding, dilation=dilation, groups=hidden, bias=False
            ),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_shortcut else out


class MobileNetV2(nn.Module):
    """pysot's MobileNetV2 (``layer0`` stem, ``layer1..7`` stages); returns ``used_layers``.

    A stage whose dilation grows starts with half of it in its first block, as in pysot.
    """

    def __init__(self, used_layers: Sequence[int] = (3, 5, 7), width_mult: float = 1.0) -> None:
        super().__init__()
        if not width_mult > 0:
            raise ValueError(f"width_mult must be positive, got {width_mult!r}")
        self.used_layers = check_used_layers(used_layers, 1 + len(_STAGES))
        channels = int(32 * width_mult)
        self.layer0 = nn.Sequential(
            nn.Conv2d(3, channels, 3, 2, 0, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU6(inplace=True),
        )
        previous_dilation = 1
        for index, (ratio, width, blocks, stride, dilation) in enumerate(_STAGES, start=1):
            out_channels = int(width * width_mult)
            first_dilation = dilation if dilation == previous_dilation else max(dilation // 2, 1)
            layers = [InvertedResidual(channels, out_channels, stride, ratio, first_dilation)]
            layers += [
                InvertedResidual(out_channels, out_channels, 1, ratio, dilation)
                for _ in range(1, blocks)
            ]
            self.add_module(f"layer{index}", nn.Sequential(*layers))
            channels, previous_dilation = out_channels, dilation

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, List[torch.Tensor]]:
        outputs = []
        for index in range(max(self.used_layers) + 1):
            x = getattr(self, f"layer{index}")(x)
            outputs.append(x)
        return pick_outputs(outputs, self.used_layers)
