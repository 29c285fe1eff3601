"""What the demo draws on a frame: the box, the score, the frame rates and the lost state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import cv2
import numpy as np

from ..geometry import Box

#: BGR colours. The box is pure green while tracking and pure red while lost (so is the LOST
#: label); nothing else is drawn in pure green, so a screenshot shows where the box is.
Color = Tuple[int, int, int]
TRACKING_COLOR: Color = (0, 255, 0)
LOST_COLOR: Color = (0, 0, 255)
TEXT_COLOR: Color = (255, 255, 255)
_PANEL_COLOR = (40, 40, 40)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
BOX_THICKNESS = 2


@dataclass(frozen=True)
class FrameStatus:
    """One frame's tracking state as shown.

    ``score`` is ``None`` on a frame where the target was (re)selected; ``fps`` counts frames
    through the whole loop (decode, track, draw, show), ``tracker_fps`` only ``Tracker.update``.
    """

    box: Box
    score: Optional[float]
    lost: bool
    fps: float
    tracker_fps: float


def box_corners(box: Box) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """Integer top-left and bottom-right pixel corners of ``(x, y, w, h)``."""
    x, y, w, h = box
    return (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h)))


def annotate(frame: np.ndarray, status: FrameStatus) -> np.ndarray:
    """A copy of ``frame`` with the box and the status (score, frame rates, lost) at the top."""
    image = frame.copy()
    color = LOST_COLOR if status.lost else TRACKING_COLOR
    top_left, bottom_right = box_corners(status.box)
    cv2.rectangle(image, top_left, bottom_right, color, BOX_THICKNESS, cv2.LINE_8)
    score = "target set" if status.score is None else f"score {status.score:.2f}"
    fps = f"FPS {status.fps:.0f} (tracker {status.tracker_fps:.0f})" if status.fps > 0 else ""
    lines = [(f"{score}  {fps}".strip(), TEXT_COLOR)]
    if status.lost:
        lines.append(("LOST", LOST_COLOR))
    draw_text(image, lines, top=True)
    return image


def draw_text(image: np.ndarray, lines: List[Tuple[str, Color]], top: bool) -> None:
    """Write ``(text, colour)`` lines on a dark panel at the top or bottom left corner, in place."""
    scale = max(0.4, min(image.shape[:2]) / 720.0)
    thickness = 1 if scale < 0.8 else 2
    line_height = int(round(30 * scale))
    height = line_height * len(lines) + line_height // 3
    width = max(cv2.getTextSize(text, _FONT, scale, thickness)[0][0] for text, _ in lines) + 10
    y0 = 0 if top else image.shape[0] - height
    cv2.rectangle(image, (0, y0), (width, y0 + height), _PANEL_COLOR, cv2.FILLED)
    for row, (text, color) in enumerate(lines):
        baseline = y0 + line_height * (row + 1) - line_height // 6
        cv2.putText(image, text, (5, baseline), _FONT, scale, color, thickness, cv2.LINE_AA)
