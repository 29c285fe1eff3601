"""SiamFC's head: a scaled cross-correlation of template and search features."""

from __future__ import annotations

from typing import Dict, Tuple

import torch

from ..correlation import xcorr
from .base import SiameseHead


class SiamFCHead(SiameseHead):
    """``response = out_scale * xcorr(xf, zf)``, one channel (N x 1 x 17 x 17 for 255-px crops).

    It has no parameters: the kernel is the template feature map itself. ``out_scale``
    (0.001 in siamfc-pytorch) keeps the responses in the range the loss was trained on.
    """

    def __init__(self, out_scale: float = 0.001) -> None:
        super().__init__()
        self.out_scale = out_scale

    def prepare(self, zf: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The template features, unchanged (N x C x h x w)."""
        return (zf,)

    def forward(
        self, kernel: Tuple[torch.Tensor, ...], xf: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        return {"response": self.out_scale * xcorr(xf, kernel[0])}
