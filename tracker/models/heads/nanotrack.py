"""NanoTrack's anchor-free heads (v1, v2, v3), key layout of the published checkpoints.

All three correlate every template cell with the search map (pixel-wise correlation, one
channel per template cell, reweighted by channel attention), then run separable conv
towers to a 2-channel classification map (logits) and a 4-channel box map: the distances
(left, top, right, bottom) from each map position to the box edges, in search-crop pixels
(the head applies ``exp``). v3 adds a depthwise correlation with the template's centre.
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch
from torch import nn

from ..correlation import xcorr_depthwise, xcorr_pointwise
from .base import SiameseHead

Kernel = Tuple[torch.Tensor, ...]

#: Side of the template centre that v3's depthwise correlation slides over the search map.
_DEPTHWISE_KERNEL_SIZE = 4


class ChannelAttention(nn.Module):
    """Per-channel gate from the global mean: 1x1 conv -> ReLU -> 1x1 conv -> sigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels, 1)
        self.fc2 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True))))
        return x * torch.sigmoid(gate)


def _projection(channels: int) -> nn.Sequential:
    """1x1 conv with bias + BatchNorm, applied to features before correlating them."""
    return nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels))


def _depthwise(channels: int, kernel_size: int, padding: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, kernel_size, padding=padding, groups=channels, bias=False)


def _check_template(zf: torch.Tensor, channels: int, size: int) -> None:
    if zf.dim() != 4 or zf.shape[1] != channels or tuple(zf.shape[2:]) != (size, size):
        raise ValueError(
            f"template features must be N x {channels} x {size} x {size}, got {tuple(zf.shape)}"
        )


class PixelwiseCorrelation(nn.Module):
    """Pixel-wise correlation + channel attention, with v2/v3's optional extra layers.

    ``project``: 1x1 conv + BN on template (``conv_kernel``) and search (``conv_search``)
    features first. ``refine`` (v3): depthwise 2x2 conv, BN, ReLU6, 1x1 conv, BN afterwards,
    which shrinks the map by one.
    """

    def __init__(
        self, in_channels: int, template_size: int, project: bool = False, refine: bool = False
    ) -> None:
        super().__init__()
        cells = template_size * template_size
        self.in_channels = in_channels
        self.template_size = template_size
        self.CA_layer = ChannelAttention(cells)
        self.conv_kernel = _projection(in_channels) if project else None
        self.conv_search = _projection(in_channels) if project else None
        self.conv = nn.Sequential(
            _depthwise(cells, 2, padding=0),
            nn.BatchNorm2d(cells),
            nn.ReLU6(inplace=True),
            nn.Conv2d(cells, cells, 1),
            nn.BatchNorm2d(cells),
        ) if refine else None

    def prepare(self, zf: torch.Tensor) -> torch.Tensor:
        """The correlation kernel for template features ``zf``."""
        _check_template(zf, self.in_channels, self.template_size)
        return zf if self.conv_kernel is None else self.conv_kernel(zf)

    def forward(self, kernel: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        if self.conv_search is not None:
            xf = self.conv_search(xf)
        corr = self.CA_layer(xcorr_pointwise(xf, kernel))
        return corr if self.conv is None else self.conv(corr)


class DepthwiseCorrelation(nn.Module):
    """v3's depthwise correlation of the template's central 4x4 with the search map (pad 1)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.conv_kernel = _projection(in_channels)
        self.conv_search = _projection(in_channels)

    def prepare(self, zf: torch.Tensor) -> torch.Tensor:
        """Project the central 4x4 cells of template features ``zf``."""
        start = (zf.shape[3] - _DEPTHWISE_KERNEL_SIZE) // 2
        stop = start + _DEPTHWISE_KERNEL_SIZE
        return self.conv_kernel(zf[:, :, start:stop, start:stop])

    def forward(self, kernel: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        return xcorr_depthwise(self.conv_search(xf), kernel, padding=1)


def _separable_tower(
    in_channels: int, out_channels: int, kernel_sizes: Sequence[int]
) -> nn.Sequential:
    """v1/v2 tower: per layer depthwise kxk, 1x1 conv, BN, ReLU6."""
    layers = []
    channels = in_channels
    for kernel_size in kernel_sizes:
        layers += [
            _depthwise(channels, kernel_size, padding=kernel_size // 2),
            nn.Conv2d(channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(inplace=True),
        ]
        channels = out_channels
    return nn.Sequential(*layers)


def _bottleneck_tower(channels: int, depth: int) -> nn.Sequential:
    """v3 tower: per block depthwise 3x3, BN, ReLU6, 1x1 conv, BN (linear output)."""
    layers = []
    for _ in range(depth):
        layers += [
            _depthwise(channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU6(inplace=True),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
        ]
    return nn.Sequential(*layers)


def _pointwise_out(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1))


def _outputs(logits: torch.Tensor, distances: torch.Tensor) -> Dict[str, torch.Tensor]:
    return {"cls": logits, "loc": torch.exp(distances)}


class NanoTrackHeadV1(SiameseHead):
    """NanoTrack v1: one shared pixel-wise correlation of the raw backbone features.

    ``in_channels``: backbone width; ``template_size``: side of the template feature map
    (8 for a 127 exemplar), which sets the correlation width (64).
    """

    def __init__(self, in_channels: int = 48, template_size: int = 8) -> None:
        super().__init__()
        cells = template_size * template_size
        self.corr_pw = PixelwiseCorrelation(in_channels, template_size)
        self.cls_tower = _separable_tower(cells, 128, (5, 5, 3))
        self.bbox_tower = _separable_tower(cells, 96, (3, 3, 5, 5))
        self.cls_logits = _pointwise_out(128, 2)
        self.bbox_pred = _pointwise_out(96, 4)

    def prepare(self, zf: torch.Tensor) -> Kernel:
        return (self.corr_pw.prepare(zf),)

    def forward(self, kernel: Kernel, xf: torch.Tensor) -> Dict[str, torch.Tensor]:
        corr = self.corr_pw(kernel[0], xf)
        cls = self.cls_logits(self.cls_tower(corr))
        return _outputs(cls, self.bbox_pred(self.bbox_tower(corr)))


class NanoTrackHeadV2(SiameseHead):
    """NanoTrack v2: separate projected pixel-wise correlations for classification and box."""

    def __init__(self, in_channels: int = 48, template_size: int = 8) -> None:
        super().__init__()
        cells = template_size * template_size
        self.corr_pw_reg = PixelwiseCorrelation(in_channels, template_size, project=True)
        self.corr_pw_cls = PixelwiseCorrelation(in_channels, template_size, project=True)
        self.cls_pw_tower = _separable_tower(cells, 96, (3,) * 6)
        self.bbox_pw_tower = _separable_tower(cells, 96, (3,) * 6)
        self.cls_pred = _pointwise_out(96, 2)
        self.bbox_pred = _pointwise_out(96, 4)

    def prepare(self, zf: torch.Tensor) -> Kernel:
        return (self.corr_pw_cls.prepare(zf), self.corr_pw_reg.prepare(zf))

    def forward(self, kernel: Kernel, xf: torch.Tensor) -> Dict[str, torch.Tensor]:
        cls_kernel, reg_kernel = kernel
        cls = self.cls_pred(self.cls_pw_tower(self.corr_pw_cls(cls_kernel, xf)))
        reg = self.bbox_pred(self.bbox_pw_tower(self.corr_pw_reg(reg_kernel, xf)))
        return _outputs(cls, reg)


class NanoTrackHeadV3(SiameseHead):
    """NanoTrack v3: pixel-wise and depthwise correlations fused per branch; maps are n-1."""

    def __init__(self, in_channels: int = 96, template_size: int = 8) -> None:
        super().__init__()
        cells = template_size * template_size
        self.corr_dw_reg = DepthwiseCorrelation(in_channels)
        self.corr_pw_reg = PixelwiseCorrelation(in_channels, template_size, True, refine=True)
        self.corr_dw_cls = DepthwiseCorrelation(in_channels)
        self.corr_pw_cls = PixelwiseCorrelation(in_channels, template_size, True, refine=True)
        self.cls_tower = _bottleneck_tower(in_channels, 6)
        self.bbox_tower = _bottleneck_tower(in_channels, 6)
        self.cls_logits = _pointwise_out(in_channels, 2)
        self.bbox_pred = _pointwise_out(in_channels, 4)
        self.down_reg = _pointwise_out(cells + in_channels, in_channels)
        self.down_cls = _pointwise_out(cells + in_channels, in_channels)

    def prepare(self, zf: torch.Tensor) -> Kernel:
        return (
            self.corr_pw_cls.prepare(zf),
            self.corr_dw_cls.prepare(zf),
            self.corr_pw_reg.prepare(zf),
            self.corr_dw_reg.prepare(zf),
        )

    def forward(self, kernel: Kernel, xf: torch.Tensor) -> Dict[str, torch.Tensor]:
        pw_cls, dw_cls, pw_reg, dw_reg = kernel
        cls = torch.cat((self.corr_pw_cls(pw_cls, xf), self.corr_dw_cls(dw_cls, xf)), 1)
        reg = torch.cat((self.corr_pw_reg(pw_reg, xf), self.corr_dw_reg(dw_reg, xf)), 1)
        cls = self.cls_logits(self.cls_tower(self.down_cls(cls)))
        return _outputs(cls, self.bbox_pred(self.bbox_tower(self.down_reg(reg))))
