"""AlexNet feature extractors of SiamFC (siamfc-pytorch), pysot and DaSiamRPN.

Both return one stride-8 feature map without padding: 127-px exemplars give 6x6 maps,
255-px search crops 22x22.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    # siamfc-pytorch's BatchNorm: eps 1e-6, momentum 0.05.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, groups=groups),
        nn.BatchNorm2d(out_channels, eps=1e-6, momentum=0.05),
    )


class AlexNetV1(nn.Module):
    """siamfc-pytorch's ``AlexNetV1``: five conv blocks, grouped convs (groups=2) in 2, 4 and 5.

    Blocks are ``conv1`` ... ``conv5`` as in its checkpoints; ``conv5`` is a bare
    convolution (no BatchNorm, no ReLU).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            *_conv_bn(3, 96, 11, stride=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2)
        )
        self.conv2 = nn.Sequential(
            *_conv_bn(96, 256, 5, groups=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2)
        )
        self.conv3 = nn.Sequential(*_conv_bn(256, 384, 3), nn.ReLU(inplace=True))
        self.conv4 = nn.Sequential(*_conv_bn(384, 384, 3, groups=2), nn.ReLU(inplace=True))
        self.conv5 = nn.Sequential(nn.Conv2d(384, 256, 3, groups=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))


class AlexNetLegacy(nn.Module):
    """pysot's ``AlexNetLegacy``, which is also DaSiamRPN's ``featureExtract``.

    One ``features`` sequence (indices 0-15 as in the checkpoints); BatchNorm precedes
    max-pooling and ReLU, and the last convolution is followed by BatchNorm only. Channel
    widths 96-256-384-384-256 are multiplied by ``width_mult`` (2 for DaSiamRPN-BIG).
    """

    def __init__(self, width_mult: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = (int(c * width_mult) for c in (96, 256, 384, 384, 256))
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, kernel_size=11, stride=2),
            nn.BatchNorm2d(c1),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, kernel_size=5),
            nn.BatchNorm2d(c2),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c2, c3, kernel_size=3),
            nn.BatchNorm2d(c3),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3),
            nn.BatchNorm2d(c4),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3),
            nn.BatchNorm2d(c5),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
