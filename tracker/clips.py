"""Video clips annotated the LaSOT way: ``clip.mp4`` with ``clip.txt`` beside it, one 1-based
``x,y,w,h`` line per frame (as ``../shared/data/clips`` holds them)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .geometry import Box


def first_box(video: Path, option: str) -> Box:
    """The first annotated box of ``video`` in the library's convention (0-based corners).

    ``option`` names the command-line option the video came from, for the error message.
    """
    boxes = Path(video).with_suffix(".txt")
    if not boxes.is_file():
        raise FileNotFoundError(
            f"{option}: expected the first box in {boxes} (1-based x,y,w,h lines beside the video)"
        )
    x, y, w, h = np.loadtxt(boxes, delimiter=",", max_rows=1)
    return float(x) - 1, float(y) - 1, float(w), float(h)


def frames(video: Path, option: str) -> Iterator[np.ndarray]:
    """Decoded BGR frames of ``video``; ``FileNotFoundError`` naming ``option`` if unreadable."""
    if not Path(video).is_file():
        raise FileNotFoundError(f"{option}: no such video: {video}")
    capture = cv2.VideoCapture(str(video))
    try:
        ok, frame = capture.read()
        if not ok:
            raise FileNotFoundError(f"{option}: cannot decode {video}")
        while ok:
            yield frame
            ok, frame = capture.read()
    finally:
        capture.release()
