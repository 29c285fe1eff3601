"""The demo's tracking loop: one ``Tracker.update`` per frame, shown, recorded and counted."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Iterator, List, Optional, TextIO, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from ..api import Tracker
from ..geometry import Box
from .display import Action, Window
from .overlay import FrameStatus, annotate
from .sources import FrameSource

#: Weight of the newest frame in the smoothed frame rates shown on screen.
_SMOOTHING = 0.1


def format_box(box: Box) -> str:
    """``x,y,w,h`` with every float written exactly (``repr``), so files compare equal."""
    return ",".join(repr(float(v)) for v in box)


class Recorder:
    """Writes the annotated video (``mp4v``) and the boxes file, whichever were asked for.

    Raises ``FileNotFoundError`` / ``ValueError`` naming ``--output`` or ``--save-boxes``
    when a file cannot be created.
    """

    def __init__(
        self,
        video_path: Optional[str],
        boxes_path: Optional[str],
        frame_size: Tuple[int, int],
        fps: float,
    ) -> None:
        self._boxes: Optional[TextIO] = None
        self._video: Optional[cv2.VideoWriter] = None
        if boxes_path:
            check_folder(boxes_path, "--save-boxes")
            try:
                self._boxes = open(boxes_path, "w", encoding="ascii")
            except OSError as error:
                raise ValueError(
                    f"--save-boxes: cannot write {boxes_path}: {error.strerror}"
                ) from None
        if video_path:
            check_folder(video_path, "--output")
            writer = cv2.VideoWriter(video_path, cv2.VideoWriter_fourcc(*"mp4v"), fps, frame_size)
            if not writer.isOpened():
                self.close()
                raise ValueError(
                    f"--output: OpenCV cannot write a video to {video_path} "
                    "(use a name ending in .mp4, .avi or .mov)"
                )
            self._video = writer

    @property
    def writes_video(self) -> bool:
        return self._video is not None

    def write(self, image: Optional[np.ndarray], box: Box) -> None:
        """Record one frame: ``image`` (needed only when :attr:`writes_video`) and its box."""
        if self._video is not None:
            self._video.write(image)
        if self._boxes is not None:
            self._boxes.write(format_box(box) + "\n")

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
            self._video = None
        if self._boxes is not None:
            self._boxes.close()
            self._boxes = None


def check_folder(path: str, option: str) -> None:
    """Raise ``FileNotFoundError`` naming ``option`` when ``path``'s folder does not exist."""
    folder = Path(path).absolute().parent
    if not folder.is_dir():
        raise FileNotFoundError(f"{option}: the folder {folder} does not exist")


@dataclass
class RunSummary:
    """What a run did: frames processed, frames flagged lost, ``Tracker.update`` seconds."""

    frames: int = 0
    lost: int = 0
    update_seconds: List[float] = field(default_factory=list)
    interrupted: bool = False
    #: The container's frame count when the source ended before it (truncated or corrupt).
    expected_frames: Optional[int] = None

    @property
    def ended_early(self) -> bool:
        """The source stopped giving frames before the count its container announced."""
        return self.expected_frames is not None

    def lines(self) -> List[str]:
        """The summary as printed at the end of a run."""
        lines = [f"frames: {self.frames}"]
        if self.update_seconds:
            ms = np.asarray(self.update_seconds) * 1000.0
            lines.append(
                f"latency per frame: mean {ms.mean():.2f} ms, p95 {np.percentile(ms, 95):.2f} ms "
                f"(Tracker.update over {len(ms)} frames, {1000.0 / ms.mean():.0f} FPS)"
            )
        share = 100.0 * self.lost / self.frames if self.frames else 0.0
        lines.append(f"frames flagged lost: {self.lost} ({share:.1f}%)")
        if self.interrupted:
            lines.append("stopped early (Ctrl-C)")
        if self.ended_early:
            lines.append(f"warning: video ended after {self.frames} of {self.expected_frames} "
                         "frames: truncated or corrupt")
        return lines


class _Rate:
    """Events per second, exponentially smoothed over the intervals given."""

    def __init__(self) -> None:
        self.value = 0.0

    def add(self, seconds: float) -> float:
        if seconds > 0:
            rate = 1.0 / seconds
            if self.value == 0.0:
                self.value = rate
            else:
                self.value += _SMOOTHING * (rate - self.value)
        return self.value


def _reselect(
    window: Window, tracker: Tracker, frame: np.ndarray, status: FrameStatus, image: np.ndarray
) -> Tuple[FrameStatus, np.ndarray]:
    """Let the user draw a new target on ``frame``; keeps the old one when cancelled."""
    chosen = window.select_target(frame)
    if chosen is None:
        return status, image
    tracker.init(frame, chosen)
    status = FrameStatus(chosen, None, False, status.fps, status.tracker_fps)
    return status, annotate(frame, status)


@contextlib.contextmanager
def _stop_on_ctrl_c() -> Iterator[threading.Event]:
    """An event that the first Ctrl-C sets, so the frame in hand is finished and recorded;
    a second Ctrl-C interrupts as usual."""
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def request_stop(signum: int, frame: Optional[FrameType]) -> None:
        stop.set()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, request_stop)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def run(
    tracker: Tracker,
    source: FrameSource,
    first_frame: np.ndarray,
    box: Box,
    *,
    window: Optional[Window],
    recorder: Recorder,
    max_frames: Optional[int],
) -> RunSummary:
    """Track from ``first_frame`` (target ``box``) to the end of ``source`` or ``max_frames``.

    A source that ends before its known ``frame_count`` is recorded in the summary
    (:attr:`RunSummary.ended_early`); stopping at ``max_frames`` or on a key is not.

    With a ``window``: shows every frame and obeys its keys (quit, pause, re-select). Without:
    a progress bar on stderr. Ctrl-C ends the run after the current frame; the summary says so.
    Call from the main thread (it handles SIGINT).
    """
    summary = RunSummary()
    total = min(filter(None, (source.frame_count, max_frames)), default=None)
    loop_rate, tracker_rate = _Rate(), _Rate()
    frame = first_frame
    status = FrameStatus(box, None, False, 0.0, 0.0)
    progress = tqdm(total=total, unit="frame", disable=window is not None, dynamic_ncols=True)
    with progress, _stop_on_ctrl_c() as stop:
        tracker.init(frame, box)
        last = time.perf_counter()
        while True:
            image = annotate(frame, status) if window is not None or recorder.writes_video else None
            action = Action.CONTINUE if window is None else window.show(image)
            if action is Action.RESELECT:
                status, image = _reselect(window, tracker, frame, status, image)
            if action in (Action.RESUMED, Action.RESELECT):
                last = time.perf_counter()  # the time the user took is not the loop's
            recorder.write(image, status.box)
            summary.frames += 1
            summary.lost += status.lost
            progress.set_postfix_str(
                f"tracker {status.tracker_fps:.0f} FPS, lost {summary.lost}", refresh=False
            )
            progress.update(1)
            if action is Action.QUIT or summary.frames == max_frames or stop.is_set():
                break
            frame = source.read()
            if frame is None:
                if source.frame_count is not None and summary.frames < source.frame_count:
                    summary.expected_frames = source.frame_count
                break
            start = time.perf_counter()
            result = tracker.update(frame)
            now = time.perf_counter()
            summary.update_seconds.append(now - start)
            status = FrameStatus(
                result.box, result.score, result.lost,
                loop_rate.add(now - last), tracker_rate.add(now - start),
            )
            last = now
    summary.interrupted = stop.is_set()
    return summary
