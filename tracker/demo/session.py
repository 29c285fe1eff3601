"""The demo's tracking loop: one ``MultiTracker.update`` per frame for all targets, shown,
recorded and counted."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Dict, Iterator, List, Optional, Sequence, TextIO, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from ..geometry import Box
from ..multi import MultiTracker
from .display import Action, Window
from .overlay import FrameStatus, TargetStatus, annotate
from .sources import FrameSource

#: Weight of the newest frame in the smoothed frame rates shown on screen.
_SMOOTHING = 0.1
#: The columns of the ``--save-boxes`` file (its header line).
BOXES_HEADER = "frame,id,x,y,w,h,score,lost"


def format_box(box: Box) -> str:
    """``x,y,w,h`` with every float written exactly (``repr``), so files compare equal."""
    return ",".join(repr(float(v)) for v in box)


def format_row(frame_index: int, target: TargetStatus) -> str:
    """One row of the boxes file (:data:`BOXES_HEADER`): floats written exactly, the score
    empty on the frame where the target was set, lost as 1 or 0."""
    score = "" if target.score is None else repr(float(target.score))
    return (f"{frame_index},{target.target_id},{format_box(target.box)},{score},"
            f"{int(target.lost)}")


class Recorder:
    """Writes the annotated video (``mp4v``) and the boxes file, whichever were asked for.

    The boxes file is CSV: the :data:`BOXES_HEADER` line, then one :func:`format_row` per
    target per frame, frames from 0, targets in id order.

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
            self._boxes.write(BOXES_HEADER + "\n")
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

    def write(
        self, image: Optional[np.ndarray], frame_index: int, targets: Sequence[TargetStatus]
    ) -> None:
        """Record frame ``frame_index``: ``image`` (needed only when :attr:`writes_video`) and
        one row per target."""
        if self._video is not None:
            self._video.write(image)
        if self._boxes is not None:
            self._boxes.writelines(format_row(frame_index, t) + "\n" for t in targets)

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
    """What a run did: frames processed, frames flagged lost (any target, and per target id),
    ``MultiTracker.update`` seconds and the number of targets each call tracked."""

    frames: int = 0
    #: Frames on which at least one target was flagged lost.
    lost: int = 0
    #: Per target id, in id order: the frames it was on, and those it was flagged lost on.
    target_frames: Dict[int, int] = field(default_factory=dict)
    target_lost: Dict[int, int] = field(default_factory=dict)
    update_seconds: List[float] = field(default_factory=list)
    update_targets: List[int] = field(default_factory=list)
    interrupted: bool = False
    #: The container's frame count when the source ended before it (truncated or corrupt).
    expected_frames: Optional[int] = None

    @property
    def ended_early(self) -> bool:
        """The source stopped giving frames before the count its container announced."""
        return self.expected_frames is not None

    def count(self, targets: Sequence[TargetStatus]) -> None:
        """Count one frame with these targets."""
        self.frames += 1
        self.lost += any(t.lost for t in targets)
        for target in targets:
            key = target.target_id
            self.target_frames[key] = self.target_frames.get(key, 0) + 1
            self.target_lost[key] = self.target_lost.get(key, 0) + target.lost

    def lines(self) -> List[str]:
        """The summary as printed at the end of a run.

        With one target, one line counts the frames it was flagged lost on; with several, that
        line counts the frames on which any was, and one line per target follows.
        """
        lines = [f"frames: {self.frames}"]
        if self.update_seconds:
            ms = np.asarray(self.update_seconds) * 1000.0
            lines.append(
                f"latency per frame: mean {ms.mean():.2f} ms, p95 {np.percentile(ms, 95):.2f} ms "
                f"(MultiTracker.update over {len(ms)} frames, {_targets(self.update_targets)}, "
                f"{1000.0 / ms.mean():.0f} FPS)"
            )
        several = len(self.target_frames) > 1
        lines.append(f"frames flagged lost{' (any target)' if several else ''}: "
                     f"{self.lost} ({_share(self.lost, self.frames)})")
        if several:
            lines.extend(
                f"target {target_id}: flagged lost on {self.target_lost[target_id]} of {frames} "
                f"frames ({_share(self.target_lost[target_id], frames)})"
                for target_id, frames in self.target_frames.items()
            )
        if self.interrupted:
            lines.append("stopped early (Ctrl-C)")
        if self.ended_early:
            lines.append(f"warning: video ended after {self.frames} of {self.expected_frames} "
                         "frames: truncated or corrupt")
        return lines


def _share(part: int, whole: int) -> str:
    return f"{100.0 * part / whole if whole else 0.0:.1f}%"


def _targets(counts: Sequence[int]) -> str:
    """``1 target``, ``3 targets`` or ``1 to 3 targets`` for the target counts of the updates."""
    low, high = min(counts), max(counts)
    return f"{high} target{'s' if high > 1 else ''}" if low == high else f"{low} to {high} targets"


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


def _start(
    tracker: MultiTracker, frame: np.ndarray, boxes: Sequence[Box]
) -> Tuple[TargetStatus, ...]:
    """Replace the tracker's targets by ``boxes`` on ``frame``: their statuses, in id order."""
    tracker.clear()
    return tuple(TargetStatus(tracker.add(frame, box), box, None, False) for box in boxes)


def _reselect(
    window: Window, tracker: MultiTracker, frame: np.ndarray, status: FrameStatus,
    image: np.ndarray,
) -> Tuple[FrameStatus, np.ndarray]:
    """Let the user draw new targets on ``frame`` (they get new ids); keeps the old ones when
    none is drawn."""
    next_id = max((t.target_id for t in status.targets), default=-1) + 1
    chosen = window.select_targets(frame, next_id)
    if not chosen:
        return status, image
    status = FrameStatus(_start(tracker, frame, chosen), status.fps, status.tracker_fps)
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
    tracker: MultiTracker,
    source: FrameSource,
    first_frame: np.ndarray,
    boxes: Sequence[Box],
    *,
    window: Optional[Window],
    recorder: Recorder,
    max_frames: Optional[int],
) -> RunSummary:
    """Track the targets ``boxes`` (ids 0, 1, ... in that order) from ``first_frame`` to the
    end of ``source`` or ``max_frames``; ``tracker``'s other targets are dropped.

    A source that ends before its known ``frame_count`` is recorded in the summary
    (:attr:`RunSummary.ended_early`); stopping at ``max_frames`` or on a key is not.

    With a ``window``: shows every frame and obeys its keys (quit, pause, re-select all
    targets). Without: a progress bar on stderr. Ctrl-C ends the run after the current frame;
    the summary says so. Call from the main thread (it handles SIGINT).
    """
    summary = RunSummary()
    total = min(filter(None, (source.frame_count, max_frames)), default=None)
    loop_rate, tracker_rate = _Rate(), _Rate()
    frame = first_frame
    progress = tqdm(total=total, unit="frame", disable=window is not None, dynamic_ncols=True)
    with progress, _stop_on_ctrl_c() as stop:
        status = FrameStatus(_start(tracker, frame, boxes), 0.0, 0.0)
        last = time.perf_counter()
        while True:
            image = annotate(frame, status) if window is not None or recorder.writes_video else None
            action = Action.CONTINUE if window is None else window.show(image)
            if action is Action.RESELECT:
                status, image = _reselect(window, tracker, frame, status, image)
            if action in (Action.RESUMED, Action.RESELECT):
                last = time.perf_counter()  # the time the user took is not the loop's
            recorder.write(image, summary.frames, status.targets)
            summary.count(status.targets)
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
            results = tracker.update(frame)
            now = time.perf_counter()
            summary.update_seconds.append(now - start)
            summary.update_targets.append(len(results))
            targets = tuple(
                TargetStatus(target_id, r.box, r.score, r.lost, r.searching)
                for target_id, r in results.items()
            )
            status = FrameStatus(targets, loop_rate.add(now - last), tracker_rate.add(now - start))
            last = now
    summary.interrupted = stop.is_set()
    return summary
