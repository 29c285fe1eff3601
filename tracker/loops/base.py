"""What every tracking loop shares: the network runner contract and crop-to-blob step."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Dict, Protocol, Tuple

import cv2
import numpy as np

from ..config import TrackingParams

State = Tuple[float, float, float, float]  # cx, cy (pixel-index coordinates), w, h


class NetworkRunner(Protocol):
    """A network behind numpy arrays (torch or onnxruntime)."""

    def template(self, z: np.ndarray) -> Any:
        """Kernel for exemplar blobs ``z`` (N x 3 x H x W float32)."""

    def track(self, kernel: Any, x: np.ndarray) -> Dict[str, np.ndarray]:
        """Head outputs for search blobs ``x`` against ``kernel``."""


def to_blob(*patches: np.ndarray, input_order: str = "bgr") -> np.ndarray:
    """Stack uint8 H x W x 3 BGR crops into an N x 3 x H x W float32 network input."""
    batch = np.stack(patches) if len(patches) > 1 else patches[0][None]
    if input_order == "rgb":
        batch = batch[..., ::-1]
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)


def channel_means(frame: np.ndarray) -> np.ndarray:
    """Per-channel mean of a frame (float64), the references' padding colour source."""
    return np.asarray(cv2.mean(frame)[: frame.shape[2]], dtype=np.float64)


class TrackingLoop(ABC):
    """Per-target tracking state machine of one head family.

    ``start`` crops the exemplar and computes the kernel; ``step`` searches one frame and
    returns the new state and the frame's score in [0, 1]. Frames are validated BGR
    uint8 arrays; states are ``(cx, cy, w, h)`` in pixel-index coordinates.
    """

    def __init__(self, params: TrackingParams, runner: NetworkRunner, input_order: str) -> None:
        self.params = params
        self.runner = runner
        self.input_order = input_order

    @abstractmethod
    def start(self, frame: np.ndarray, state: State) -> None:
        """Begin tracking the target at ``state`` in ``frame``."""

    @abstractmethod
    def step(self, frame: np.ndarray) -> Tuple[State, float]:
        """Locate the target in ``frame``."""
