"""One annotated training sequence, whatever layout it was read from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import cv2
import numpy as np


class FrameError(Exception):
    """A frame that cannot be read or decoded (the trainer skips it, counts it and reports it)."""


class FrameSource(Protocol):
    """Random access to a sequence's frames."""

    def __len__(self) -> int: ...

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based) as an H x W x 3 uint8 BGR array; :class:`FrameError` when
        it cannot be read."""


class ImageFiles:
    """Frames stored as one image file each (JPEG, PNG...), decoded on every read."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = tuple(str(p) for p in paths)

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, index: int) -> np.ndarray:
        image = cv2.imread(self.paths[index], cv2.IMREAD_COLOR)
        if image is None:
            raise FrameError(f"cannot decode {self.paths[index]}")
        return image


@dataclass(frozen=True)
class TrainSequence:
    """Frames plus their boxes.

    ``boxes``: N x 4 float64 ``(x, y, w, h)`` in the library's 0-based corner convention.
    ``valid``: N bools, true where the target is visible and its box finite with w, h > 0
    (absent, fully occluded, out-of-view, NaN and empty-box frames are false and are never
    sampled). ``name``: ``"<kind>:<sequence>"`` for messages.
    """

    name: str
    frames: FrameSource
    boxes: np.ndarray
    valid: np.ndarray

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float64)
        valid = np.asarray(self.valid, dtype=bool)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"{self.name}: boxes must be N x 4, got {boxes.shape}")
        if valid.shape != (len(boxes),) or len(self.frames) != len(boxes):
            raise ValueError(
                f"{self.name}: {len(self.frames)} frames, {len(boxes)} boxes and "
                f"{valid.shape[0]} visibility flags must agree"
            )
        finite = np.isfinite(boxes).all(axis=1) & (np.nan_to_num(boxes[:, 2:]) > 0).all(axis=1)
        valid = valid & finite
        boxes.flags.writeable = False
        valid.flags.writeable = False
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "valid", valid)

    def __len__(self) -> int:
        return len(self.boxes)
