"""The demo's window: whether one can open, showing frames, keys, and drawing targets on it.

OpenCV's Qt and GTK windows end the whole process when the X server cannot be reached, so
:func:`headless_reason` checks the display before any window is created.
"""

from __future__ import annotations

import ctypes
import enum
import os
import sys
from typing import List, Optional, Tuple

import cv2
import numpy as np

from ..geometry import Box
from .overlay import TEXT_COLOR, TargetStatus, draw_target, draw_text

#: Frames larger than this are shown scaled down to fit (the window keeps the aspect ratio).
MAX_WINDOW_SIZE = (1600, 900)
KEYS_HINT = "q/Esc quit  space pause  r re-select targets"
PAUSED_HINT = "PAUSED  space resumes  q/Esc quit  r re-select targets"
#: The footer while the user draws targets: before the first one, and once some are chosen.
SELECT_FIRST_HINT = "draw a target, then SPACE or ENTER (c cancels)"
SELECT_MORE_HINT = "{count} chosen: draw another + SPACE/ENTER, or SPACE/ENTER alone to track"
_PAUSED_POLL_MS = 50


class Action(enum.Enum):
    """What the user asked for with a key (or by closing the window)."""

    CONTINUE = "continue"
    PAUSE = "pause"
    RESUMED = "resumed"  # paused, then resumed: the frame stayed on screen for a while
    QUIT = "quit"
    RESELECT = "reselect"


_KEY_ACTIONS = {
    ord("q"): Action.QUIT,
    ord("Q"): Action.QUIT,
    27: Action.QUIT,
    ord(" "): Action.PAUSE,
    ord("r"): Action.RESELECT,
    ord("R"): Action.RESELECT,
}


def headless_reason() -> Optional[str]:
    """Why no window can be opened here, or ``None`` when one can."""
    if not sys.platform.startswith("linux"):
        return None
    display = os.environ.get("DISPLAY")
    if not display:
        if os.environ.get("WAYLAND_DISPLAY"):
            return None
        return "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    if not _x_server_reachable(display):
        return f"cannot connect to the X display {display!r}"
    return None


def _x_server_reachable(display: str) -> bool:
    """Try to connect to the X server; ``True`` when libX11 is missing (nothing to check with)."""
    try:
        xlib = ctypes.CDLL("libX11.so.6")
    except OSError:
        return True
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    connection = xlib.XOpenDisplay(display.encode())
    if not connection:
        return False
    xlib.XCloseDisplay(connection)
    return True


class Window:
    """One OpenCV window showing annotated frames and reading the demo's keys.

    Raises ``cv2.error`` when OpenCV was built without a GUI (opencv-python-headless).
    """

    def __init__(self, title: str, frame_size: Tuple[int, int]) -> None:
        self.title = title
        width, height = frame_size
        scale = min(1.0, MAX_WINDOW_SIZE[0] / width, MAX_WINDOW_SIZE[1] / height)
        flags = cv2.WINDOW_GUI_NORMAL
        if scale < 1.0:
            cv2.namedWindow(title, flags | cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
            cv2.resizeWindow(title, int(width * scale), int(height * scale))
        else:
            cv2.namedWindow(title, flags | cv2.WINDOW_AUTOSIZE)

    def show(self, image: np.ndarray) -> Action:
        """Show ``image`` and read a key; space pauses here until space, q/Esc or r.

        Returns ``CONTINUE``, ``RESUMED`` (after a pause), ``QUIT`` or ``RESELECT``.
        """
        cv2.imshow(self.title, _with_footer(image, KEYS_HINT))
        action = self._poll(1)
        if action is Action.PAUSE:
            return self._paused(image)
        return action

    def _paused(self, image: np.ndarray) -> Action:
        cv2.imshow(self.title, _with_footer(image, PAUSED_HINT))
        while True:
            action = self._poll(_PAUSED_POLL_MS)
            if action is Action.PAUSE:
                return Action.RESUMED
            if action is not Action.CONTINUE:
                return action

    def _poll(self, wait_ms: int) -> Action:
        key = cv2.waitKey(wait_ms)
        if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            return Action.QUIT
        return Action.CONTINUE if key == -1 else _KEY_ACTIONS.get(key & 0xFF, Action.CONTINUE)

    def select_targets(self, frame: np.ndarray, first_id: int = 0) -> List[Box]:
        """The boxes the user draws on ``frame`` with the mouse, in the order drawn; ``[]``
        when the first one is cancelled.

        Each box is drawn, then added with SPACE or ENTER and stays shown with its label and
        colour, those of the target ids ``first_id``, ``first_id + 1``, ... it will get;
        SPACE or ENTER with no box drawn, or c, ends the selection.
        """
        boxes: List[Box] = []
        while True:
            prompt = frame.copy()
            for number, box in enumerate(boxes):
                draw_target(prompt, TargetStatus(first_id + number, box, None, False))
            hint = SELECT_MORE_HINT.format(count=len(boxes)) if boxes else SELECT_FIRST_HINT
            draw_text(prompt, [(hint, TEXT_COLOR)], top=False)
            x, y, w, h = cv2.selectROI(
                self.title, prompt, showCrosshair=True, fromCenter=False, printNotice=False
            )
            if w <= 0 or h <= 0:
                return boxes
            boxes.append((float(x), float(y), float(w), float(h)))

    def close(self) -> None:
        cv2.destroyAllWindows()
        cv2.waitKey(1)


def _with_footer(image: np.ndarray, text: str) -> np.ndarray:
    framed = image.copy()
    draw_text(framed, [(text, TEXT_COLOR)], top=False)
    return framed
