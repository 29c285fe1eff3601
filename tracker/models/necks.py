"""Necks between backbone and head (pysot's adjust layers)."""

from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn


class AdjustLayer(nn.Module):
    """1x1 convolution + BatchNorm; template features are then cut to their centre.

    The centre crop (``center_size`` x ``center_size``) applies to the template branch only:
    it removes the zero-padding border of a 127-pixel exemplar's features.
    """

    def __init__(self, in_channels: int, out_channels: int, center_size: int = 7) -> None:
        super().__init__()
        self.downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.center_size = center_size

    def forward(self, x: torch.Tensor, is_template: bool) -> torch.Tensor:
        x = self.downsample(x)
        if is_template and x.shape[3] > self.center_size:
            start = (x.shape[3] - self.center_size) // 2
            stop = start + self.center_size
            x = x[:, :, start:stop, start:stop]
        return x


class AdjustAllLayer(nn.Module):
    """One :class:`AdjustLayer` per backbone level (pysot names them downsample2, 3, 4)."""

    def __init__(
        self, in_channels: Sequence[int], out_channels: Sequence[int], center_size: int = 7
    ) -> None:
        super().__init__()
        if len(in_channels) != len(out_channels):
            raise ValueError("in_channels and out_channels must have the same length")
        self.num_levels = len(in_channels)
        for level, (cin, cout) in enumerate(zip(in_channels, out_channels)):
            self.add_module(f"downsample{level + 2}", AdjustLayer(cin, cout, center_size))

    def forward(self, features: Sequence[torch.Tensor], is_template: bool) -> List[torch.Tensor]:
        return [
            getattr(self, f"downsample{level + 2}")(feature, is_template)
            for level, feature in enumerate(features)
        ]
