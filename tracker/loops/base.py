"""What every tracking loop shares: the network runner contract and crop-to-blob step."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple

import cv2
import numpy as np

from ..config import TrackingParams

State = Tuple[float, float, float, float]  # cx, cy (pixel-index coordinates), w, h


class NetworkRunner(Protocol):
    """A network behind numpy arrays (torch or onnxruntime)."""

    def template(self, z: np.ndarray) -> Any:
        """Kernel for exemplar blobs ``z`` (N x 3 x H x W float32)."""

    def track(self, kernel: Any, x: np.ndarray) -> Dict[str, np.ndarray]:
        """Head outputs for search blobs ``x`` against ``kernel`` (of batch 1, serving every
        crop, or of ``x``'s batch, one kernel per crop)."""

    def stack(self, kernels: Sequence[Any], crops: Sequence[int]) -> Any:
        """One kernel for a batch of several targets' crops: ``kernels[i]`` (batch 1) repeated
        for its ``crops[i]`` consecutive crops."""


def to_blob(
    *patches: np.ndarray, input_order: str = "bgr", out: Optional[np.ndarray] = None
) -> np.ndarray:
    """Stack uint8 H x W x 3 BGR crops into an N x 3 x H x W float32 network input, written
    into ``out`` when given (a buffer of that shape reused across frames)."""
    height, width = patches[0].shape[:2]
    if out is None:
        out = np.empty((len(patches), 3, height, width), dtype=np.float32)
    order = (2, 1, 0) if input_order == "rgb" else (0, 1, 2)
    for item, patch in enumerate(patches):
        # One plane per channel: cv2.split is about twice as fast as a strided transpose.
        for channel, plane in zip(order, cv2.split(patch)):
            out[item, channel] = plane
    return out


def channel_means(frame: np.ndarray) -> np.ndarray:
    """Per-channel mean of a frame (float64), the references' padding colour source."""
    return np.asarray(cv2.mean(frame)[: frame.shape[2]], dtype=np.float64)


class TrackingLoop(ABC):
    """Per-target tracking state machine of one head family.

    ``start`` crops the exemplar and computes the kernel. A frame is searched in two halves
    around one network call, so that the crops of many targets can share a call:
    ``search`` cuts the frame's search crops, the runner scores them (as one blob) against
    ``kernel``, and ``locate`` turns the outputs into the new state and the frame's score
    in [0, 1]; ``step`` does all three. Frames are validated BGR uint8 arrays; states are
    ``(cx, cy, w, h)`` in pixel-index coordinates.
    """

    #: True while the loop is re-detecting a lost target (see :class:`~tracker.loops.LongTermLoop`).
    searching = False

    def __init__(self, params: TrackingParams, runner: NetworkRunner, input_order: str) -> None:
        self.params = params
        self.runner = runner
        self.input_order = input_order
        self.kernel: Any = None
        self._state: State = (0.0, 0.0, 0.0, 0.0)

    @property
    def state(self) -> State:
        """The current ``(cx, cy, w, h)``."""
        return self._state

    def snapshot(self) -> Tuple[Any, ...]:
        """Everything :meth:`locate` changes, for :meth:`restore`."""
        return (self._state,)

    def restore(self, snapshot: Tuple[Any, ...]) -> None:
        """Go back to a :meth:`snapshot` taken earlier."""
        (self._state,) = snapshot

    def place(self, state: State) -> None:
        """Move the target to ``state`` (a re-detection) without changing the kernel."""
        self._state = state

    @abstractmethod
    def start(self, frame: np.ndarray, state: State) -> None:
        """Begin tracking the target at ``state`` in ``frame`` (sets :attr:`kernel`)."""

    @abstractmethod
    def search_side(self) -> float:
        """Side, in frame pixels, of the square :meth:`search` crops around the state."""

    @abstractmethod
    def search(self, frame: np.ndarray) -> List[np.ndarray]:
        """The search crops of ``frame`` around the current state (uint8 H x W x 3, BGR)."""

    @abstractmethod
    def locate(self, frame: np.ndarray, outputs: Dict[str, np.ndarray]) -> Tuple[State, float]:
        """The new state and score from the network's ``outputs`` for :meth:`search`'s crops."""

    def step(self, frame: np.ndarray) -> Tuple[State, float]:
        """Locate the target in ``frame``: search, one network call, locate."""
        blob = to_blob(*self.search(frame), input_order=self.input_order)
        return self.locate(frame, self.runner.track(self.kernel, blob))
