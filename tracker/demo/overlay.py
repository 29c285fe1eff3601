"""What the demo draws on a frame: every target's box and label, the frame rates, the lost state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..geometry import Box

#: BGR colours. Each target's box is drawn in its palette colour (:func:`target_color`) while
#: tracking and in pure red while lost (so is the LOST label). The palette colours appear only
#: on the boxes (the labels use a darker shade), so a screenshot shows where each box is.
Color = Tuple[int, int, int]
#: One colour per target id, cycling: green, orange, cyan, magenta, yellow, azure, violet.
TARGET_COLORS: Tuple[Color, ...] = (
    (0, 255, 0), (0, 165, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255), (255, 128, 0),
    (211, 0, 148),
)
TRACKING_COLOR: Color = TARGET_COLORS[0]
LOST_COLOR: Color = (0, 0, 255)
TEXT_COLOR: Color = (255, 255, 255)
_PANEL_COLOR = (40, 40, 40)
#: A label's background is its target's colour times this (dark enough for white text).
_LABEL_SHADE = 0.55
_FONT = cv2.FONT_HERSHEY_SIMPLEX
BOX_THICKNESS = 2


@dataclass(frozen=True)
class TargetStatus:
    """One target's state on one frame; ``score`` is ``None`` on a frame where it was set;
    ``searching``: a long-term tracker is re-detecting it (it is lost then too)."""

    target_id: int
    box: Box
    score: Optional[float]
    lost: bool
    searching: bool = False

    @property
    def state_word(self) -> str:
        """``SEARCHING``, ``LOST`` or nothing, as the window shows it."""
        return "SEARCHING" if self.searching else "LOST" if self.lost else ""


@dataclass(frozen=True)
class FrameStatus:
    """One frame's tracking state as shown: every target, in id order, and the frame rates.

    ``fps`` counts frames through the whole loop (decode, track, draw, show), ``tracker_fps``
    only ``MultiTracker.update`` (all targets at once).
    """

    targets: Tuple[TargetStatus, ...]
    fps: float
    tracker_fps: float


def target_color(target_id: int) -> Color:
    """The colour of target ``target_id``'s box: :data:`TARGET_COLORS`, cycling."""
    return TARGET_COLORS[target_id % len(TARGET_COLORS)]


def box_corners(box: Box) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """Integer top-left and bottom-right pixel corners of ``(x, y, w, h)``."""
    x, y, w, h = box
    return (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h)))


def target_label(target: TargetStatus) -> str:
    """The text next to a box: the id, then the score (``set`` on the frame it was set),
    with ``LOST`` while lost (``SEARCHING`` while a long-term tracker re-detects it)."""
    score = "set" if target.score is None else f"{target.score:.2f}"
    word = target.state_word
    return f"{target.target_id} {word + ' ' if word else ''}{score}"


def annotate(frame: np.ndarray, status: FrameStatus) -> np.ndarray:
    """A copy of ``frame`` with every target's box and label and the status panel at the top
    (the score with one target, the target count with several, the frame rates, the lost
    targets)."""
    image = frame.copy()
    for target in status.targets:
        draw_target(image, target)
    fps = f"FPS {status.fps:.0f} (tracker {status.tracker_fps:.0f})" if status.fps > 0 else ""
    lines = [(f"{_panel_summary(status.targets)}  {fps}".strip(), TEXT_COLOR)]
    lost = [t for t in status.targets if t.lost]
    if len(status.targets) == 1 and lost:
        lines.append((lost[0].state_word, LOST_COLOR))
    elif lost:
        lines.append((f"LOST: {', '.join(str(t.target_id) for t in lost)}", LOST_COLOR))
    draw_text(image, lines, top=True)
    return image


def _panel_summary(targets: Sequence[TargetStatus]) -> str:
    if len(targets) != 1:
        return f"{len(targets)} targets"
    score = targets[0].score
    return "target set" if score is None else f"score {score:.2f}"


def draw_target(image: np.ndarray, target: TargetStatus) -> None:
    """Draw ``target``'s box (its colour, red while lost) and its label, in place.

    The label sits on a dark shade of the target's colour just above the box, below it when
    the box touches the top of the frame, inside it when neither fits."""
    color = target_color(target.target_id)
    top_left, bottom_right = box_corners(target.box)
    cv2.rectangle(image, top_left, bottom_right, LOST_COLOR if target.lost else color,
                  BOX_THICKNESS, cv2.LINE_8)
    text = target_label(target)
    scale, thickness, line_height = _text_size(image)
    width = cv2.getTextSize(text, _FONT, scale, thickness)[0][0] + 6
    gap = BOX_THICKNESS
    if top_left[1] - gap - line_height >= 0:
        y0 = top_left[1] - gap - line_height
    elif bottom_right[1] + gap + line_height <= image.shape[0]:
        y0 = bottom_right[1] + gap
    else:
        y0 = top_left[1] + gap
    x0 = min(max(top_left[0], 0), max(image.shape[1] - width, 0))
    shade = tuple(int(c * _LABEL_SHADE) for c in color)
    cv2.rectangle(image, (x0, y0), (x0 + width, y0 + line_height), shade, cv2.FILLED)
    cv2.putText(image, text, (x0 + 3, y0 + line_height - line_height // 4), _FONT, scale,
                TEXT_COLOR, thickness, cv2.LINE_AA)


def _text_size(image: np.ndarray) -> Tuple[float, int, int]:
    """Font scale, stroke thickness and line height for ``image``'s size."""
    scale = max(0.4, min(image.shape[:2]) / 720.0)
    thickness = 1 if scale < 0.8 else 2
    return scale, thickness, int(round(30 * scale))


def draw_text(image: np.ndarray, lines: List[Tuple[str, Color]], top: bool) -> None:
    """Write ``(text, colour)`` lines on a dark panel at the top or bottom left corner, in place."""
    scale, thickness, line_height = _text_size(image)
    height = line_height * len(lines) + line_height // 3
    width = max(cv2.getTextSize(text, _FONT, scale, thickness)[0][0] for text, _ in lines) + 10
    y0 = 0 if top else image.shape[0] - height
    cv2.rectangle(image, (0, y0), (width, y0 + height), _PANEL_COLOR, cv2.FILLED)
    for row, (text, color) in enumerate(lines):
        baseline = y0 + line_height * (row + 1) - line_height // 6
        cv2.putText(image, text, (5, baseline), _FONT, scale, color, thickness, cv2.LINE_AA)
