"""Anchor-based region-proposal heads: DaSiamRPN's up-channel RPN and pysot's depthwise RPNs.

Each returns ``{"cls": N x 2A x S x S, "loc": N x 4A x S x S}`` with channel layouts of the
published checkpoints: cls ``[background x A, foreground x A]``, loc ``[dx, dy, dw, dh] x A``.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..correlation import xcorr, xcorr_depthwise
from .base import SiameseHead

Kernel = Tuple[torch.Tensor, ...]


class UpChannelRPN(SiameseHead):
    """DaSiamRPN's head: template convolutions grow into 2A / 4A correlation kernels.

    The template features become ``2A`` (cls) and ``4A`` (loc) kernels of
    ``feature_channels`` channels each; the search features pass one 3x3 convolution per
    branch and are correlated with all of them. A 1x1 convolution refines the offsets.
    Parameter names and their order are those of DaSiamRPN's ``SiamRPN``.
    """

    def __init__(
        self, in_channels: int = 256, feature_channels: int = 256, anchor_num: int = 5
    ) -> None:
        super().__init__()
        self.anchor_num = anchor_num
        self.feature_channels = feature_channels
        self.conv_r1 = nn.Conv2d(in_channels, feature_channels * 4 * anchor_num, kernel_size=3)
        self.conv_r2 = nn.Conv2d(in_channels, feature_channels, kernel_size=3)
        self.conv_cls1 = nn.Conv2d(in_channels, feature_channels * 2 * anchor_num, kernel_size=3)
        self.conv_cls2 = nn.Conv2d(in_channels, feature_channels, kernel_size=3)
        self.regress_adjust = nn.Conv2d(4 * anchor_num, 4 * anchor_num, kernel_size=1)

    def _as_kernels(self, raw: torch.Tensor, outputs: int) -> torch.Tensor:
        n, _, height, width = raw.shape
        return raw.reshape(n, outputs, self.feature_channels, height, width)

    def prepare(self, zf: torch.Tensor) -> Kernel:
        """``(cls kernels N x 2A x C x k x k, loc kernels N x 4A x C x k x k)``."""
        cls_kernel = self._as_kernels(self.conv_cls1(zf), 2 * self.anchor_num)
        loc_kernel = self._as_kernels(self.conv_r1(zf), 4 * self.anchor_num)
        return cls_kernel, loc_kernel

    def forward(self, kernel: Kernel, xf: torch.Tensor) -> Dict[str, torch.Tensor]:
        cls_kernel, loc_kernel = kernel
        cls = xcorr(self.conv_cls2(xf), cls_kernel)
        loc = self.regress_adjust(xcorr(self.conv_r2(xf), loc_kernel))
        return {"cls": cls, "loc": loc}


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DepthwiseXCorr(nn.Module):
    """One branch of pysot's depthwise RPN: 3x3 conv per input, channel-wise correlation, 1x1 head.

    ``conv_kernel`` depends on the template only, so :meth:`prepare` runs it once per target.
    """

    def __init__(
        self, in_channels: int, hidden: int, out_channels: int, kernel_size: int = 3
    ) -> None:
        super().__init__()
        self.conv_kernel = _conv_bn_relu(in_channels, hidden, kernel_size)
        self.conv_search = _conv_bn_relu(in_channels, hidden, kernel_size)
        self.head = nn.Sequential(
            *_conv_bn_relu(hidden, hidden, 1),
            nn.Conv2d(hidden, out_channels, kernel_size=1),
        )

    def prepare(self, zf: torch.Tensor) -> torch.Tensor:
        """The correlation kernel for template features ``zf``."""
        return self.conv_kernel(zf)

    def forward(self, kernel: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        return self.head(xcorr_depthwise(self.conv_search(xf), kernel))


class DepthwiseRPN(SiameseHead):
    """pysot's ``DepthwiseRPN``: a cls and a loc :class:`DepthwiseXCorr` branch."""

    def __init__(
        self, anchor_num: int = 5, in_channels: int = 256, out_channels: int = 256
    ) -> None:
        super().__init__()
        self.cls = DepthwiseXCorr(in_channels, out_channels, 2 * anchor_num)
        self.loc = DepthwiseXCorr(in_channels, out_channels, 4 * anchor_num)

    def prepare(self, zf: torch.Tensor) -> Kernel:
        """``(cls kernel, loc kernel)``, each N x out_channels x k x k."""
        return self.cls.prepare(zf), self.loc.prepare(zf)

    def forward(self, kernel: Kernel, xf: torch.Tensor) -> Dict[str, torch.Tensor]:
        cls_kernel, loc_kernel = kernel
        return {"cls": self.cls(cls_kernel, xf), "loc": self.loc(loc_kernel, xf)}


class MultiRPN(SiameseHead):
    """pysot's ``MultiRPN``: one :class:`DepthwiseRPN` per feature level, outputs fused.

    Levels are named ``rpn2``, ``rpn3``, ... as in the checkpoints. With ``weighted`` the
    fusion weights are the softmax of the learned ``cls_weight`` / ``loc_weight``;
    otherwise the levels are averaged.
    """

    def __init__(
        self, anchor_num: int = 5, in_channels: Sequence[int] = (256, 256, 256),
        weighted: bool = False,
    ) -> None:
        super().__init__()
        self.num_levels = len(in_channels)
        self.weighted = weighted
        for level, channels in enumerate(in_channels):
            self.add_module(f"rpn{level + 2}", DepthwiseRPN(anchor_num, channels, channels))
        if weighted:
            self.cls_weight = nn.Parameter(torch.ones(self.num_levels))
            self.loc_weight = nn.Parameter(torch.ones(self.num_levels))

    def _levels(self) -> List[DepthwiseRPN]:
        return [getattr(self, f"rpn{level + 2}") for level in range(self.num_levels)]

    def prepare(self, zf: Sequence[torch.Tensor]) -> Kernel:
        """Per level ``(cls kernel, loc kernel)``, flattened: ``(cls2, loc2, cls3, loc3, ...)``."""
        if len(zf) != self.num_levels:
            raise ValueError(f"MultiRPN expects {self.num_levels} feature levels, got {len(zf)}")
        return tuple(k for rpn, z in zip(self._levels(), zf) for k in rpn.prepare(z))

    def forward(self, kernel: Kernel, xf: Sequence[torch.Tensor]) -> Dict[str, torch.Tensor]:
        if len(xf) != self.num_levels or len(kernel) != 2 * self.num_levels:
            raise ValueError(
                f"MultiRPN expects {self.num_levels} feature levels and {2 * self.num_levels} "
                f"kernel tensors, got {len(xf)} and {len(kernel)}"
            )
        outputs = [
            rpn(kernel[2 * level:2 * level + 2], x)
            for level, (rpn, x) in enumerate(zip(self._levels(), xf))
        ]
        return {
            "cls": self._fuse([o["cls"] for o in outputs], "cls_weight"),
            "loc": self._fuse([o["loc"] for o in outputs], "loc_weight"),
        }

    def _fuse(self, maps: List[torch.Tensor], weight_name: str) -> torch.Tensor:
        # Summation order follows pysot (Python ``sum`` from 0), so results match it bit for bit.
        if not self.weighted:
            return sum(maps) / len(maps)
        weights = F.softmax(getattr(self, weight_name), 0)
        return sum(m * weights[level] for level, m in enumerate(maps))
