"""Run a :class:`~tracker.models.SiameseNetwork` behind numpy arrays."""

from __future__ import annotations

import copy
import os
import threading
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..config import ModelConfig
from ..models.network import SiameseNetwork

Kernel = Tuple[torch.Tensor, ...]
_Shapes = Tuple[Tuple[int, ...], ...]


class _SearchBranch(torch.nn.Module):
    """``network.track`` with tensors in and out, the form ``torch.jit.trace`` records."""

    def __init__(self, network: SiameseNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor, *kernel: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(self.network.track(kernel, x).values())


class TorchRunner:
    """Numpy-facing wrapper around a network; holds no per-target state.

    With ``trace`` the search branch runs as a graph
    recorded by ``torch.jit.trace`` for each input shape it meets, on a channels-last copy of
    the network: the same operators without eager mode's per-operator overhead and without
    oneDNN's layout conversions around every convolution, which dominate small networks
    (NanoTrack v2 on 2 threads: 20 ms eager, 14 traced, 11 traced channels-last). Outputs
    differ from eager ones by float rounding only (about 1e-6 relative). Where tracing fails
    the eager network runs. Kernels stay torch tensors on the network's device.
    """

    def __init__(self, network: SiameseNetwork, trace: bool = False) -> None:
        self.network = network.eval()
        first = next(network.parameters(), None)
        self.device = first.device if first is not None else torch.device("cpu")
        self._traced: Optional[Dict[_Shapes, Optional[torch.jit.ScriptModule]]] = (
            {} if trace else None
        )
        self._output_names: List[str] = []
        self._channels_last: Optional[SiameseNetwork] = None
        self._trace_lock = threading.Lock()

    def template(self, z: np.ndarray) -> Kernel:
        with torch.inference_mode():
            kernel = self.network.template(torch.from_numpy(z).to(self.device))
        # Converted here once per target, not on every search.
        return tuple(_channels_last(k) for k in kernel) if self._traced is not None else kernel

    def stack(self, kernels: Sequence[Kernel], crops: Sequence[int]) -> Kernel:
        parts = zip(*kernels)
        stacked = tuple(
            torch.cat([k.expand(count, *k.shape[1:]) for k, count in zip(part, crops)])
            for part in parts
        )
        return tuple(_channels_last(k) for k in stacked) if self._traced is not None else stacked

    def track(self, kernel: Kernel, x: np.ndarray) -> Dict[str, np.ndarray]:
        search = torch.from_numpy(x).to(self.device)
        with torch.inference_mode():
            graph = self._graph_for(kernel, search) if self._traced is not None else None
            if graph is not None:
                outputs = dict(zip(self._output_names, graph(_channels_last(search), *kernel)))
            elif self.device.type == "cpu" and search.shape[0] > CPU_PASS_CROPS:
                outputs = self._track_in_passes(kernel, search)
            else:
                outputs = self.network.track(kernel, search)
        return {name: value.cpu().numpy() for name, value in outputs.items()}

    def _track_in_passes(self, kernel: Kernel, search: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The eager network over ``search`` in passes of :data:`CPU_PASS_CROPS` crops (each
        crop with its own kernel, or the one kernel of batch 1), outputs joined."""
        passes = []
        for start in range(0, search.shape[0], CPU_PASS_CROPS):
            end = start + CPU_PASS_CROPS
            part = tuple(k if k.shape[0] == 1 else k[start:end] for k in kernel)
            passes.append(self.network.track(part, search[start:end]))
        return {name: torch.cat([p[name] for p in passes]) for name in passes[0]}

    def _graph_for(self, kernel: Kernel, search: torch.Tensor) -> Optional[torch.jit.ScriptModule]:
        """The traced search branch for these input shapes (recorded on first use)."""
        shapes = (tuple(search.shape),) + tuple(tuple(k.shape) for k in kernel)
        if shapes in self._traced:
            return self._traced[shapes]
        with self._trace_lock:
            if shapes not in self._traced:
                self._output_names = list(self.network.track(kernel, search))
                if self._channels_last is None:
                    self._channels_last = copy.deepcopy(self.network).to(
                        memory_format=torch.channels_last)
                inputs = (_channels_last(search), *kernel)
                self._traced[shapes] = _trace(_SearchBranch(self._channels_last), inputs)
        return self._traced[shapes]


def _channels_last(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.contiguous(memory_format=torch.channels_last) if tensor.dim() == 4 else tensor


def _trace(
    module: torch.nn.Module, inputs: Tuple[torch.Tensor, ...]
) -> Optional[torch.jit.ScriptModule]:
    with warnings.catch_warnings():
        # torch 2.13 marks TorchScript deprecated; tracing is kept for its speed on CPU,
        # with the eager network as the fallback once a torch release drops it.
        warnings.simplefilter("ignore")
        try:
            return torch.jit.trace(module, inputs, check_trace=False)
        except Exception:  # any failure to record leaves the eager network in charge
            return None


#: The most search crops the eager network takes in one pass on a CPU. The large networks'
#: activations for a big batch outgrow the caches (per crop, on 2 cores: dasiamrpn-otb 67 ms in
#: passes of 4 crops, 92 ms in one pass of 16; siamfc-alexnet 43 against 49), so a
#: MultiTracker's batch runs in passes of this size; the traced small networks and CUDA take
#: the whole batch at once.
CPU_PASS_CROPS = 4

#: Families whose search branch the backend traces by default: small networks, where eager
#: mode's per-operator overhead is a large share of a frame (see :class:`TorchRunner`). The
#: large networks spend their time inside the convolutions and gain nothing.
TRACED_FAMILIES = frozenset({"nanotrack"})


def load_runner(
    config: ModelConfig,
    weights: Optional[Union[str, "os.PathLike[str]"]] = None,
    *,
    device: Optional[Union[str, torch.device]] = None,
    threads: Optional[int] = None,
    spinning: Optional[bool] = None,
) -> TorchRunner:
    """The backend loader: build the network of ``config`` on ``device`` and load ``weights``
    (a checkpoint path; ``None`` finds the model's published checkpoint through its
    model record). ``threads`` and ``spinning`` are refused: torch's thread pool is process-wide,
    so the library leaves ``torch.set_num_threads`` to the caller."""
    from ..weights import resolve_weights

    if threads is not None:
        raise ValueError(
            f"threads applies to the onnxruntime backend (got threads={threads!r}); for torch "
            "call torch.set_num_threads yourself, it is shared by the whole process"
        )
    if spinning is not None:
        raise ValueError(
            f"spinning applies to the onnxruntime backend (got spinning={spinning!r}); torch's "
            "thread pool is shared by the whole process"
        )
    if weights is None:
        weights = resolve_weights(config.name, "checkpoint")
    runner = untrained_runner(config, device)
    runner.network.load_weights(os.fspath(weights))
    return runner


def untrained_runner(
    config: ModelConfig, device: Optional[Union[str, torch.device]] = None
) -> TorchRunner:
    """A runner of ``config``'s network with its initial weights (timings, training, tests)."""
    from ..models.network import build_model

    return TorchRunner(build_model(config, device=device), trace=config.family in TRACED_FAMILIES)
