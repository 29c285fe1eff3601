"""The contract every head follows, so one network class and one export path serve all."""

from __future__ import annotations

from typing import Dict, Tuple, Union

import torch
from torch import nn

Features = Union[torch.Tensor, Tuple[torch.Tensor, ...]]


class SiameseHead(nn.Module):
    """Splits a head into its template-only part and its per-frame part.

    ``prepare(zf)`` runs once per target and returns a tuple of tensors (the *kernel*);
    everything that depends only on the template belongs there. ``forward(kernel, xf)``
    runs every frame and returns named outputs (``"cls"``/``"loc"`` or ``"response"``).
    A kernel of batch 1 must serve a search batch of any size.
    """

    def prepare(self, zf: Features) -> Tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def forward(self, kernel: Tuple[torch.Tensor, ...], xf: Features) -> Dict[str, torch.Tensor]:
        raise NotImplementedError
