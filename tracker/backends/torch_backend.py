"""Run a :class:`~tracker.models.SiameseNetwork` behind numpy arrays."""

from __future__ import annotations

from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch

from ..models.network import SiameseNetwork


class TorchRunner:
    """Numpy-facing wrapper around a network; holds no per-target state.

    Kernels stay torch tensors on the network's device between calls.
    """

    def __init__(self, network: SiameseNetwork) -> None:
        self.network = network.eval()
        first = next(network.parameters(), None)
        self.device = first.device if first is not None else torch.device("cpu")

    def template(self, z: np.ndarray) -> Tuple[torch.Tensor, ...]:
        with torch.inference_mode():
            return self.network.template(torch.from_numpy(z).to(self.device))

    def track(self, kernel: Tuple[torch.Tensor, ...], x: np.ndarray) -> Dict[str, np.ndarray]:
        with torch.inference_mode():
            outputs = self.network.track(kernel, torch.from_numpy(x).to(self.device))
        return {name: value.cpu().numpy() for name, value in outputs.items()}


def load_runner(
    config, weights: Optional[str], device: Optional[Union[str, torch.device]] = None
) -> TorchRunner:
    """Build the network of ``config``, load ``weights`` (a checkpoint path) and wrap it."""
    from ..models.network import build_model

    network = build_model(config, device=device)
    if weights is not None:
        network.load_weights(weights)
    return TorchRunner(network)
