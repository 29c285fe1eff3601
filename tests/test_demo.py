"""``python -m tracker.demo`` and the examples in ``demo/``: end to end, errors, a real window.

Everything runs as a subprocess, the way a user runs it, with no display unless the test
starts its own X server (Xvfb).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar

import cv2
import numpy as np
import pytest

import tracker
from tests.conftest import ROOT, shared_path
from tracker.demo import cli
from tracker.demo.cli import attach_negative_values, choose_model
from tracker.demo import display
from tracker.demo.display import (
    PAUSED_HINT, SELECT_FIRST_HINT, SELECT_MORE_HINT, Action, Window, headless_reason,
)
from tracker.demo.overlay import (
    LOST_COLOR, TARGET_COLORS, TEXT_COLOR, TRACKING_COLOR, FrameStatus, TargetStatus, annotate,
    box_corners, draw_text, target_color, target_label,
)
from tracker.demo.session import BOXES_HEADER, Recorder, run
from tracker.demo.sources import FrameSource, open_images

CLIP_FRAMES = 300
MODEL = "nanotrack-v2"
FOLDER_SEQUENCE = "Football1"
T = TypeVar("T")


def _env(**changes: str) -> Dict[str, str]:
    """The subprocess environment: no display, one thread, the shared NanoTrack weights
    (unless ``changes`` name ``TRACKER_WEIGHTS``), then ``changes``."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    if "TRACKER_WEIGHTS" not in changes:
        env["TRACKER_WEIGHTS"] = str(shared_path("weights", "nanotrack"))
    env.update(changes)
    return env


def _run(args: Sequence[str], env: Dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def _demo(*args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    return _run(["-m", "tracker.demo", *args], env if env is not None else _env())


def _read_boxes(path: Path) -> List[Tuple[float, ...]]:
    """A file of ``x,y,w,h`` lines (the image-folder example's output)."""
    return [tuple(float(v) for v in line.split(",")) for line in path.read_text().splitlines()]


Row = Tuple[int, int, Tuple[float, ...], Optional[float], bool]


def _saved_rows(path: Path) -> List[Row]:
    """The demo's --save-boxes file as ``(frame, id, box, score, lost)`` rows, header checked."""
    header, *lines = path.read_text().splitlines()
    assert header == "frame,id,x,y,w,h,score,lost"
    rows = []
    for line in lines:
        frame, target, x, y, w, h, score, lost = line.split(",")
        assert lost in ("0", "1"), line
        rows.append((int(frame), int(target), (float(x), float(y), float(w), float(h)),
                     float(score) if score else None, lost == "1"))
    return rows


def _saved_boxes(path: Path) -> Dict[int, List[Tuple[float, ...]]]:
    """The boxes of every target id in the demo's --save-boxes file, frame by frame."""
    boxes: Dict[int, List[Tuple[float, ...]]] = {}
    for frame, target, box, _, _ in _saved_rows(path):
        assert frame == len(boxes.setdefault(target, [])), "frames out of order"
        boxes[target].append(box)
    return boxes


def _expected_rows(results: Sequence[Dict[int, tracker.TrackResult]]) -> List[Row]:
    """The rows the demo must write for per-frame ``{id: result}`` (frame 0: the set boxes)."""
    return [(frame, target, r.box, None if frame == 0 else r.score, r.lost)
            for frame, per_target in enumerate(results) for target, r in per_target.items()]


def _first_box(ground_truth: Path) -> Tuple[float, float, float, float]:
    """First line of a 1-based OTB / LaSOT ground truth, as a 0-based corner box."""
    x, y, w, h = (float(v) for v in ground_truth.read_text().splitlines()[0].split(","))
    return x - 1, y - 1, w, h


def _init_arg(box: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in box)


def _wait_for(condition: Callable[[], Optional[T]], timeout: float, what: str) -> T:
    """The first value of ``condition()`` that is not ``None``, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value is not None:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """The subprocesses run on one thread (OMP_NUM_THREADS=1); so do the reference runs."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _api_run(frames: Iterator[np.ndarray], box) -> List[tracker.TrackResult]:
    """What the API returns on ``frames``: the init box first, then one result per update."""
    weights = shared_path("weights", "nanotrack", "nanotrackv2.pth")
    with _one_torch_thread():
        trk = tracker.build_tracker(MODEL, weights)
        trk.init(next(frames), box)
        return [tracker.TrackResult(box, 1.0, False)] + [trk.update(f) for f in frames]


def _video_frames(video: Path, count: int) -> Iterator[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    for _ in range(count):
        ok, frame = capture.read()
        assert ok, f"{video} has fewer than {count} frames"
        yield frame
    capture.release()


@pytest.fixture(scope="module")
def clip():
    """The airplane clip, its first box and the API's results on its first CLIP_FRAMES frames."""
    video = shared_path("data", "clips", "airplane-1.mp4")
    box = _first_box(video.with_suffix(".txt"))
    return video, box, _api_run(_video_frames(video, CLIP_FRAMES), box)


@pytest.fixture(scope="module")
def folder():
    """An OTB sequence folder, its first box and the API's results on all its frames."""
    sequence = shared_path("data", "otb", FOLDER_SEQUENCE)
    box = _first_box(sequence / "groundtruth_rect.txt")
    files = sorted((sequence / "img").glob("*.jpg"))
    return sequence, box, _api_run((cv2.imread(str(p)) for p in files), box)


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory) -> Path:
    """Five 160 x 120 frames of noise: a valid video for the error cases."""
    path = tmp_path_factory.mktemp("video") / "tiny.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(5):
        writer.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    writer.release()
    return path


def test_help_documents_every_option_with_an_example():
    result = _demo("--help", env=dict(os.environ))
    assert result.returncode == 0
    for option in ("--video", "--webcam", "--images", "--init", "--model", "--weights", "--backend",
                   "--output", "--save-boxes", "--no-display", "--max-frames", "--threads"):
        assert option in result.stdout
    assert "python -m tracker.demo --video" in result.stdout
    assert "q or Esc quits, space pauses, r re-selects" in result.stdout
    assert "NanoTrack's (Apache-2.0, Copyright HonglinChu)" in " ".join(result.stdout.split())


def test_help_documents_several_targets_and_the_boxes_format(tmp_path):
    result = _demo("--help", env=dict(os.environ))
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert BOXES_HEADER == "frame,id,x,y,w,h,score,lost"
    assert "repeat for several targets (ids 0, 1, ... in this order)" in text
    assert (f"--save-boxes writes CSV: the header line {BOXES_HEADER}, then one row per target "
            "per frame, the targets of a frame in id order") in text
    assert "frame counts from 0" in text and "score is the tracker's confidence" in text
    assert "empty on a frame where the target was set" in text
    assert "lost is 1 when the target is flagged lost, else 0" in text
    assert "press SPACE or ENTER with no box drawn to start tracking" in text
    assert "r re-selects the targets (all of them" in text
    # The example in the help is a file in that format: two targets on frames 0 and 1.
    lines = result.stdout.splitlines()
    start = lines.index(f"  {BOXES_HEADER}")
    example = tmp_path / "example.csv"
    example.write_text("\n".join(line.strip() for line in lines[start:start + 5]) + "\n")
    rows = _saved_rows(example)
    assert [(frame, target, score is None) for frame, target, _, score, _ in rows] == [
        (0, 0, True), (0, 1, True), (1, 0, False), (1, 1, False)]


def test_a_box_starting_left_of_the_frame_is_a_value_not_an_option(tiny_video, tmp_path):
    boxes = tmp_path / "boxes.txt"
    result = _demo("--video", str(tiny_video), "--init", "-10,-5.5,40,30", "--max-frames", "2",
                   "--save-boxes", str(boxes))
    assert result.returncode == 0, result.stderr
    assert _saved_boxes(boxes)[0][0] == (-10.0, -5.5, 40.0, 30.0)
    assert attach_negative_values(["--init", "-1,2,3,4", "--model", "m", "--init", "5,6,7,8"]) == [
        "--init=-1,2,3,4", "--model", "m", "--init", "5,6,7,8"]
    assert attach_negative_values(["--threads", "-2", "--init", ".5,1,2,3"]) == [
        "--threads", "-2", "--init", ".5,1,2,3"]


def test_every_init_may_start_left_of_the_frame(tiny_video, tmp_path):
    assert attach_negative_values(["--init", "-1,2,3,4", "--init", "-5,6,7,8"]) == [
        "--init=-1,2,3,4", "--init=-5,6,7,8"]
    boxes = tmp_path / "boxes.csv"
    result = _demo("--video", str(tiny_video), "--init", "-10,-5.5,40,30", "--init", "20,10,30,30",
                   "--init", "-3,50,20,20", "--max-frames", "2", "--save-boxes", str(boxes))
    assert result.returncode == 0, result.stderr
    saved = _saved_boxes(boxes)
    assert sorted(saved) == [0, 1, 2] and all(len(b) == 2 for b in saved.values())
    assert [saved[t][0] for t in (0, 1, 2)] == [
        (-10.0, -5.5, 40.0, 30.0), (20.0, 10.0, 30.0, 30.0), (-3.0, 50.0, 20.0, 20.0)]


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_threads_option_reaches_opencv_and_the_backend(backend, monkeypatch):
    import torch

    built = {}
    monkeypatch.setattr(cli, "build_multi_tracker",
                        lambda *a, **kw: built.update(kw) or "tracker")
    previous = torch.get_num_threads(), cv2.getNumThreads()
    args = cli.build_parser().parse_args(
        ["--video", "v.mp4", "--backend", backend, "--threads", "3"])
    try:
        assert cli._load_tracker(MODEL, "", args) == "tracker"
        assert cv2.getNumThreads() == 3
        if backend == "torch":
            assert torch.get_num_threads() == 3 and "threads" not in built
        else:
            assert torch.get_num_threads() == previous[0] and built["threads"] == 3
    finally:
        torch.set_num_threads(previous[0])
        cv2.setNumThreads(previous[1])


class _ScriptedTracker:
    """Stands in for a MultiTracker: each update flags every target with the next of the
    given lost flags (of a tuple of flags, the n-th target gets the n-th) and keeps its box."""

    def __init__(self, lost: Sequence) -> None:
        self._lost = iter(lost)
        self._boxes: Dict[int, Tuple[float, ...]] = {}
        self._ids = itertools.count()

    def clear(self) -> None:
        self._boxes.clear()

    def add(self, frame: np.ndarray, box) -> int:
        target = next(self._ids)
        self._boxes[target] = box
        return target

    def update(self, frame: np.ndarray) -> Dict[int, tracker.TrackResult]:
        flags = next(self._lost)
        if isinstance(flags, bool):
            flags = (flags,) * len(self._boxes)
        return {target: tracker.TrackResult(box, 0.1 if lost else 0.9, lost)
                for (target, box), lost in zip(self._boxes.items(), flags)}


def test_summary_counts_the_frames_flagged_lost(tmp_path):
    for number in range(7):
        cv2.imwrite(str(tmp_path / f"{number}.png"), np.full((20, 30, 3), number, np.uint8))
    source = open_images(str(tmp_path))
    flags = [False, True, True, False, True, False]
    boxes = tmp_path / "boxes.txt"
    recorder = Recorder(None, str(boxes), (30, 20), source.fps)
    summary = run(_ScriptedTracker(flags), source, source.read(), [(1.0, 2.0, 5.0, 6.0)],
                  window=None, recorder=recorder, max_frames=None)
    recorder.close()
    assert (summary.frames, summary.lost, len(summary.update_seconds)) == (7, 3, 6)
    assert "frames flagged lost: 3 (42.9%)" in summary.lines()
    assert not any(line.startswith("target ") for line in summary.lines())
    assert [(frame, lost) for frame, _, _, _, lost in _saved_rows(boxes)] == list(
        enumerate([False] + flags))


class _ScriptedWindow:
    """Stands in for the demo's window: gives the actions and the drawn targets in turn."""

    def __init__(self, actions: Sequence[Action], selections: Sequence[List[Tuple]]) -> None:
        self._actions = iter(actions)
        self._selections = iter(selections)
        self.first_ids: List[int] = []

    def show(self, image: np.ndarray) -> Action:
        return next(self._actions)

    def select_targets(self, frame: np.ndarray, first_id: int = 0) -> List[Tuple]:
        self.first_ids.append(first_id)
        return next(self._selections)


def test_r_reselects_every_target_and_the_new_ones_get_new_ids(tmp_path):
    for number in range(7):
        cv2.imwrite(str(tmp_path / f"{number}.png"), np.full((40, 60, 3), number, np.uint8))
    source = open_images(str(tmp_path))
    first, second = (1.0, 2.0, 5.0, 6.0), (20.0, 10.0, 8.0, 8.0)
    drawn = [(30.0, 5.0, 10.0, 10.0), (2.0, 20.0, 12.0, 9.0), (40.0, 25.0, 6.0, 7.0)]
    # Frame 2: r, then nothing drawn (the targets stay); frame 4: r, three targets drawn.
    window = _ScriptedWindow(
        [Action.CONTINUE, Action.CONTINUE, Action.RESELECT, Action.CONTINUE, Action.RESELECT,
         Action.CONTINUE, Action.CONTINUE],
        [[], drawn],
    )
    flags = [(False, True), (False, False), (True, True), (True, False), (False, False, True),
             (True, False, False)]
    boxes = tmp_path / "boxes.csv"
    recorder = Recorder(None, str(boxes), (60, 40), source.fps)
    summary = run(_ScriptedTracker(flags), source, source.read(), [first, second],
                  window=window, recorder=recorder, max_frames=None)
    recorder.close()
    assert window.first_ids == [2, 2]
    rows = _saved_rows(boxes)
    old = [(f, t, (first, second)[t], None if f == 0 else (0.1 if lost else 0.9), lost)
           for f, frame_flags in enumerate([(False, False)] + flags[:3]) for t, lost in
           enumerate(frame_flags)]
    new = [(f, 2 + t, drawn[t], None if f == 4 else (0.1 if lost else 0.9), lost)
           for f, frame_flags in ((4, (False,) * 3), (5, flags[4]), (6, flags[5]))
           for t, lost in enumerate(frame_flags)]
    assert rows == old + new
    assert (summary.frames, summary.lost) == (7, 4)
    assert summary.update_targets == [2, 2, 2, 2, 3, 3]
    lines = summary.lines()
    assert "frames flagged lost (any target): 4 (57.1%)" in lines
    assert [line for line in lines if line.startswith("target ")] == [
        "target 0: flagged lost on 1 of 4 frames (25.0%)",
        "target 1: flagged lost on 2 of 4 frames (50.0%)",
        "target 2: flagged lost on 1 of 3 frames (33.3%)",
        "target 3: flagged lost on 0 of 3 frames (0.0%)",
        "target 4: flagged lost on 1 of 3 frames (33.3%)",
    ]
    assert ", 2 to 3 targets, " in lines[1] and "MultiTracker.update over 6 frames" in lines[1]


def test_headless_run_saves_the_api_boxes_and_an_annotated_video(clip, tmp_path):
    video, box, expected = clip
    boxes, annotated = tmp_path / "boxes.txt", tmp_path / "annotated.mp4"
    result = _demo(
        "--video", str(video), "--init", _init_arg(box), "--max-frames", str(CLIP_FRAMES),
        "--threads", "1", "--output", str(annotated), "--save-boxes", str(boxes),
    )
    assert result.returncode == 0, result.stderr
    # No DISPLAY: the demo says so, runs without a window and shows a progress bar.
    assert "no display" in result.stderr
    assert f"{CLIP_FRAMES}/{CLIP_FRAMES}" in result.stderr
    chosen = f"model: {MODEL} (torch; the fastest CPU model whose weights are present"
    assert chosen in result.stdout
    lost = sum(r.lost for r in expected)
    assert f"frames: {CLIP_FRAMES}\n" in result.stdout
    assert re.search(r"latency per frame: mean \d+\.\d\d ms, p95 \d+\.\d\d ms "
                     rf"\(MultiTracker.update over {CLIP_FRAMES - 1} frames, 1 target, ",
                     result.stdout)
    assert f"frames flagged lost: {lost} (" in result.stdout
    assert "target 0:" not in result.stdout
    assert f"boxes: {boxes}" in result.stdout and f"video: {annotated}" in result.stdout

    assert _saved_rows(boxes) == _expected_rows([{0: r} for r in expected])

    capture = cv2.VideoCapture(str(annotated))
    written = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        written.append(image)
    assert len(written) == CLIP_FRAMES
    assert written[0].shape == (360, 640, 3)
    # The box is drawn: green along the top edge of the first frame's box (lossy codec).
    (left, top), (right, _) = box_corners(box)
    edge = written[0][top, left + 2:right - 2].astype(float).mean(axis=0)
    assert edge[1] > 150 and edge[1] - max(edge[0], edge[2]) > 80


TWO_TARGET_FRAMES = 40
#: The man standing on the right of the airplane clip's first frame.
SECOND_BOX = (583.0, 168.0, 36.0, 108.0)


def _edge_color(image: np.ndarray, box) -> np.ndarray:
    """The mean BGR colour along the top edge of ``box`` as drawn in ``image``."""
    (left, top), (right, _) = box_corners(box)
    return image[top, left + 2:right - 2].astype(float).mean(axis=0)


def test_two_targets_are_saved_per_frame_and_drawn_in_their_colours(clip, tmp_path):
    video, box, _ = clip
    with _one_torch_thread():
        multi = tracker.build_multi_tracker(MODEL, shared_path("weights", "nanotrack",
                                                               "nanotrackv2.pth"))
        frames = _video_frames(video, TWO_TARGET_FRAMES)
        first = next(frames)
        assert [multi.add(first, box), multi.add(first, SECOND_BOX)] == [0, 1]
        expected = [{0: tracker.TrackResult(box, 1.0, False),
                     1: tracker.TrackResult(SECOND_BOX, 1.0, False)}]
        expected += [multi.update(frame) for frame in frames]
    boxes, annotated = tmp_path / "boxes.csv", tmp_path / "annotated.mp4"
    result = _demo(
        "--video", str(video), "--init", _init_arg(box), "--init", _init_arg(SECOND_BOX),
        "--max-frames", str(TWO_TARGET_FRAMES), "--threads", "1", "--output", str(annotated),
        "--save-boxes", str(boxes),
    )
    assert result.returncode == 0, result.stderr
    rows = _saved_rows(boxes)
    assert [row[:2] for row in rows] == [
        (frame, target) for frame in range(TWO_TARGET_FRAMES) for target in (0, 1)]
    assert rows == _expected_rows(expected)

    any_lost = sum(any(r.lost for r in per_target.values()) for per_target in expected)
    assert f"frames flagged lost (any target): {any_lost} (" in result.stdout
    for target in (0, 1):
        lost = sum(per_target[target].lost for per_target in expected)
        assert (f"target {target}: flagged lost on {lost} of {TWO_TARGET_FRAMES} frames ("
                in result.stdout)
    updates = f"(MultiTracker.update over {TWO_TARGET_FRAMES - 1} frames, 2 targets, "
    assert updates in result.stdout

    written = list(_video_frames(annotated, TWO_TARGET_FRAMES))
    assert cv2.VideoCapture(str(annotated)).get(cv2.CAP_PROP_FRAME_COUNT) == TWO_TARGET_FRAMES
    palette = np.array([*TARGET_COLORS, LOST_COLOR], float)
    for index in (0, TWO_TARGET_FRAMES - 1):
        for target in (0, 1):
            drawn = expected[index][target]
            assert not drawn.lost
            # Lossy codec: the edge is near its target's colour, nearer than to any other.
            distances = np.linalg.norm(palette - _edge_color(written[index], drawn.box), axis=1)
            assert distances.argmin() == target and distances[target] < 40, (index, distances)


def test_backend_and_threads_reach_the_tracker(clip, tmp_path, monkeypatch):
    video, box, _ = clip
    frames = 30
    monkeypatch.setenv("TRACKER_WEIGHTS", str(shared_path("weights", "nanotrack")))
    trk = tracker.build_tracker(MODEL, backend="onnxruntime", threads=1)
    frame_iter = _video_frames(video, frames)
    trk.init(next(frame_iter), box)
    expected = [box] + [trk.update(f).box for f in frame_iter]
    boxes = tmp_path / "boxes.txt"
    result = _demo("--video", str(video), "--init", _init_arg(box), "--max-frames", str(frames),
                   "--backend", "onnxruntime", "--threads", "1", "--save-boxes", str(boxes))
    assert result.returncode == 0, result.stderr
    assert f"model: {MODEL} (onnxruntime; " in result.stdout
    assert _saved_boxes(boxes) == {0: expected}


@pytest.mark.timeout(300)
def test_ctrl_c_ends_a_headless_run_with_complete_outputs(clip, tmp_path):
    video, box, _ = clip
    boxes, annotated = tmp_path / "boxes.txt", tmp_path / "annotated.mp4"
    demo = subprocess.Popen(
        [sys.executable, "-m", "tracker.demo", "--video", str(video), "--init", _init_arg(box),
         "--output", str(annotated), "--save-boxes", str(boxes)],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # The boxes file fills in buffered blocks: once it has content, tracking is under way.
        _wait_for(lambda: True if boxes.is_file() and boxes.stat().st_size else None, 240,
                  "the first boxes")
        demo.send_signal(signal.SIGINT)
        out, errors = demo.communicate(timeout=60)
    finally:
        demo.kill()
    assert demo.returncode == 0, errors
    assert "Traceback" not in errors and "stopped early (Ctrl-C)" in out
    frames = int(re.search(r"^frames: (\d+)$", out, re.MULTILINE).group(1))
    assert 2 <= frames < 2788
    assert [row[0] for row in _saved_rows(boxes)] == list(range(frames))
    assert cv2.VideoCapture(str(annotated)).get(cv2.CAP_PROP_FRAME_COUNT) == frames


def test_image_folder_run_saves_the_api_boxes(folder, tmp_path):
    sequence, box, expected = folder
    boxes = tmp_path / "boxes.txt"
    result = _demo("--images", str(sequence / "img"), "--init", _init_arg(box), "--no-display",
                   "--save-boxes", str(boxes))
    assert result.returncode == 0, result.stderr
    assert "no display" not in result.stderr
    assert f"frames: {len(expected)}\n" in result.stdout
    assert _saved_rows(boxes) == _expected_rows([{0: r} for r in expected])


def test_image_folder_is_read_in_natural_order(tmp_path):
    for number in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"frame{number}.png"), np.full((4, 4, 3), number, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_images(str(tmp_path))
    assert source.frame_count == 3
    assert [source.read()[0, 0, 0] for _ in range(3)] == [1, 2, 10]
    assert source.read() is None


def test_overlay_shows_the_lost_state_in_red():
    frame = np.full((120, 160, 3), 90, np.uint8)
    box = (40.0, 50.0, 30.0, 20.0)
    (left, top), _ = box_corners(box)
    tracking = annotate(frame, FrameStatus((TargetStatus(0, box, 0.97, False),), 30.0, 120.0))
    lost = annotate(frame, FrameStatus((TargetStatus(0, box, 0.12, True),), 30.0, 120.0))
    assert tuple(tracking[top, left + 5]) == TRACKING_COLOR
    assert tuple(lost[top, left + 5]) == LOST_COLOR
    assert not np.all(lost == TRACKING_COLOR, axis=2).any()
    # The status panel: one line while tracking, a second ("LOST") while lost.
    panel_rows = lambda image: int(np.any(np.any(image != 90, axis=2)[:, 100:], axis=1)[:40].sum())
    assert panel_rows(lost) > panel_rows(tracking) > 0
    assert np.array_equal(frame, np.full((120, 160, 3), 90, np.uint8))


def test_overlay_draws_each_target_in_its_colour_with_its_id_and_score():
    frame = np.full((240, 320, 3), 90, np.uint8)
    targets = (TargetStatus(0, (40.0, 60.0, 50.0, 40.0), 0.97, False),
               TargetStatus(1, (150.0, 100.0, 60.0, 50.0), None, False),
               TargetStatus(2, (240.0, 160.0, 50.0, 40.0), 0.12, True))
    image = annotate(frame, FrameStatus(targets, 30.0, 120.0))
    assert [target_color(n) for n in (0, 1, 2, 7, 8)] == [
        TARGET_COLORS[0], TARGET_COLORS[1], TARGET_COLORS[2], TARGET_COLORS[0], TARGET_COLORS[1]]
    assert TRACKING_COLOR == TARGET_COLORS[0] and LOST_COLOR not in TARGET_COLORS
    assert len(set(TARGET_COLORS)) == len(TARGET_COLORS) >= 6
    for target, color in zip(targets, (TARGET_COLORS[0], TARGET_COLORS[1], LOST_COLOR)):
        (left, top), (right, bottom) = box_corners(target.box)
        assert tuple(image[top, left + 5]) == color
        # Only the box is drawn in the pure colour, its outline 2 pixels wide (below the
        # status panel, whose LOST line is red too).
        ys, xs = np.nonzero(np.all(image[40:] == color, axis=2))
        ys += 40
        outline = ((ys >= top - 1) & (ys <= bottom + 1) & (xs >= left - 1) & (xs <= right + 1))
        assert outline.all() and len(ys) > 2 * (right - left + bottom - top)
        # The label sits just above the box: a dark shade of the target's colour, white text.
        label = image[top - 13:top - 3, left:left + 30].reshape(-1, 3)
        values, counts = np.unique(label, axis=0, return_counts=True)
        shade = values[counts.argmax()].astype(float)
        base = np.array(target_color(target.target_id), float)
        assert 0.3 < shade.max() / base.max() < 0.8
        np.testing.assert_allclose(shade, base * shade.max() / base.max(), atol=1.5)
        assert (label.min(axis=1) > 180).sum() > 10  # the text (white, antialiased)
    assert [target_label(t) for t in targets] == ["0 0.97", "1 set", "2 LOST 0.12"]
    searching = TargetStatus(3, (5.0, 5.0, 9.0, 9.0), 0.31, True, True)
    assert target_label(searching) == "3 SEARCHING 0.31"
    assert not np.all(image == TARGET_COLORS[2], axis=2).any()  # target 2 is lost: red
    # The panel counts the targets and names the lost ones on a second line.
    tracking = annotate(frame, FrameStatus(targets[:2], 30.0, 120.0))
    panel_rows = lambda image: int(np.any(np.any(image != 90, axis=2)[:40], axis=1).sum())
    assert panel_rows(image) > panel_rows(tracking) > 0
    assert np.array_equal(frame, np.full((240, 320, 3), 90, np.uint8))


def test_window_selection_adds_boxes_until_one_is_confirmed_empty(monkeypatch):
    drawn = [(10, 20, 30, 40), (60, 30, 20, 25)]
    answers = iter([*drawn, (0, 0, 0, 0), (0, 0, 0, 0)])
    prompts = []

    def select_roi(title, image, showCrosshair, fromCenter, printNotice):
        prompts.append(image.copy())
        return next(answers)

    monkeypatch.setattr(display.cv2, "selectROI", select_roi)
    window = Window.__new__(Window)  # no real window: OpenCV's selection is scripted
    window.title = "tracker.demo - test"
    frame = np.full((120, 160, 3), 90, np.uint8)
    assert window.select_targets(frame, first_id=3) == [tuple(map(float, b)) for b in drawn]
    assert len(prompts) == 3
    # Every prompt shows the boxes chosen so far, in the colours of the ids they will get.
    for count, prompt in enumerate(prompts):
        for index, box in enumerate(drawn):
            (left, top), _ = box_corners(box)
            assert (tuple(prompt[top, left + 5]) == target_color(3 + index)) == (index < count)
    footers = []
    for hint in (SELECT_FIRST_HINT, SELECT_MORE_HINT.format(count=1)):
        footer = frame.copy()
        draw_text(footer, [(hint, TEXT_COLOR)], top=False)
        footers.append(footer)
    assert np.array_equal(prompts[0], footers[0])
    assert np.array_equal(prompts[1][100:], footers[1][100:])
    assert not np.array_equal(footers[0][100:], footers[1][100:])
    assert window.select_targets(frame) == []
    assert np.array_equal(frame, np.full((120, 160, 3), 90, np.uint8))


def test_unreachable_display_means_no_window(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert headless_reason() == "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    monkeypatch.setenv("DISPLAY", ":4321")
    try:
        ctypes.CDLL("libX11.so.6")
    except OSError:
        pytest.skip("libX11 is not installed: the display cannot be probed")
    assert headless_reason() == "cannot connect to the X display ':4321'"


def test_demo_runs_without_a_window_when_the_display_is_unreachable(tiny_video):
    result = _demo("--video", str(tiny_video), "--init", "40,30,40,40",
                   env=_env(DISPLAY=":4321"))
    assert result.returncode == 0, result.stderr
    assert "cannot connect to the X display ':4321'; running without a window" in result.stderr
    assert "frames: 5\n" in result.stdout


def test_default_model_is_the_first_real_time_model_with_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TRACKER_CACHE", str(tmp_path / "cache"))
    model, reason = choose_model(None, None, "torch")
    assert model == "nanotrack-v2" and "will be downloaded" in reason
    for name in ("nanotrackv1.pth", "nanotrackv3.pth"):  # the real files: sizes and digests are checked
        (tmp_path / name).symlink_to(shared_path("weights", "nanotrack", name))
    assert choose_model(None, None, "torch")[0] == "nanotrack-v3"
    assert choose_model("siamfc-alexnet", None, "torch") == ("siamfc-alexnet", "")


@pytest.mark.parametrize(
    "case, args, expected",
    [
        ("missing video", ["--video", "{tmp}/missing.mp4", "--init", "1,1,5,5"],
         "--video: no such file: {tmp}/missing.mp4"),
        ("unreadable video", ["--video", "{tmp}/broken.mp4", "--init", "1,1,5,5"],
         "--video: cannot read {tmp}/broken.mp4"),
        ("webcam", ["--webcam", "97", "--init", "1,1,5,5"], "--webcam: camera 97 is not available"),
        ("init outside", ["--video", "{video}", "--init", "170,10,20,20", "--no-display"],
         "--init (170.0, 10.0, 20.0, 20.0) lies entirely outside the 160x120 frame"),
        ("init short", ["--video", "{video}", "--init", "1,2,3"],
         "argument --init: expected four comma-separated numbers x,y,w,h, got '1,2,3'"),
        ("init words", ["--video", "{video}", "--init", "a,b,c,d"],
         "argument --init: expected four comma-separated numbers x,y,w,h, got 'a,b,c,d'"),
        ("init empty box", ["--video", "{video}", "--init", "10,10,0,5"],
         "--init must have positive width and height"),
        ("no init headless", ["--video", "{video}"], "--init x,y,w,h is needed without a window"),
        ("unknown model", ["--video", "{video}", "--init", "1,1,5,5", "--model", "nanotrack-v9"],
         "unknown model 'nanotrack-v9'"),
        ("weights not present", ["--video", "{video}", "--init", "1,1,5,5", "--model",
                                 "siamfc-alexnet"], "no weights for model 'siamfc-alexnet'"),
        ("download fails", ["--video", "{video}", "--init", "1,1,5,5"],
         "no weights for model 'nanotrack-v2' (checkpoint): nanotrackv2.pth is in none of the "
         "searched folders and could not be downloaded"),
        ("weights file missing", ["--video", "{video}", "--init", "1,1,5,5", "--weights",
                                  "{tmp}/none.pth"], "{tmp}/none.pth"),
        ("empty folder", ["--images", "{tmp}/empty", "--init", "1,1,5,5"],
         "--images: no image files"),
        ("output folder missing", ["--video", "{video}", "--init", "1,1,5,5", "--output",
                                   "{tmp}/no/such/folder/out.mp4"], "--output: the folder"),
        ("bad threads", ["--video", "{video}", "--init", "1,1,5,5", "--threads", "0"],
         "argument --threads: expected a positive integer, got '0'"),
        ("init negative outside", ["--video", "{video}", "--init", "-50,-40,20,20"],
         "--init (-50.0, -40.0, 20.0, 20.0) lies entirely outside the 160x120 frame"),
        ("second init outside", ["--video", "{video}", "--init", "1,1,5,5", "--init",
                                 "170,10,20,20", "--no-display"],
         "--init #2 (170.0, 10.0, 20.0, 20.0) lies entirely outside the 160x120 frame"),
        ("second init negative outside", ["--video", "{video}", "--init", "1,1,5,5", "--init",
                                          "-50,-40,20,20"],
         "--init #2 (-50.0, -40.0, 20.0, 20.0) lies entirely outside the 160x120 frame"),
        ("second init short", ["--video", "{video}", "--init", "1,1,5,5", "--init", "1,2,3"],
         "argument --init: expected four comma-separated numbers x,y,w,h, got '1,2,3'"),
        ("bad weights file", ["--video", "{video}", "--init", "1,1,5,5", "--weights",
                              "{tmp}/broken.mp4"], "broken.mp4 is not a PyTorch checkpoint"),
        ("boxes folder missing", ["--video", "{video}", "--init", "1,1,5,5", "--save-boxes",
                                  "{tmp}/no/such/folder/boxes.txt"], "--save-boxes: the folder"),
    ],
)
def test_errors_are_one_line_on_stderr(case, args, expected, tiny_video, tmp_path):
    (tmp_path / "broken.mp4").write_text("this is not a video")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    # No weights anywhere, and downloads go to a port where nothing listens.
    env = _env(TRACKER_WEIGHTS=str(tmp_path / "empty"), TRACKER_CACHE=str(tmp_path / "cache"),
               TRACKER_WEIGHTS_URL="http://127.0.0.1:9/weights")
    filled = [a.format(tmp=tmp_path, video=tiny_video) for a in args]
    # Without --no-display the demo finds no display on its own; that note must not come
    # before an error (one line on stderr means one line).
    result = _demo(*filled, env=env)
    assert result.returncode == 2, (case, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), (case, result.stderr)
    assert expected.format(tmp=tmp_path) in lines[0], (case, lines[0])


def test_robot_example_calls_back_once_per_frame_with_the_latency(clip):
    video, box, expected = clip
    result = _run(["demo/robot_camera_loop.py", "--camera", str(video), "--init", _init_arg(box),
                   "--max-frames", "20"], _env())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    pattern = re.compile(r"frame +(\d+)  box ([-\d.,]+)  score [\d.]+  latency (\d+\.\d) ms")
    matches = [pattern.match(line) for line in lines[:-1]]
    assert len(matches) == 20 and all(matches)
    for index, match in enumerate(matches, start=1):
        assert int(match.group(1)) == index
        printed = [float(v) for v in match.group(2).split(",")]
        np.testing.assert_allclose(printed, expected[index].box, rtol=0, atol=0.005 + 1e-9)
    assert lines[-1] == "stopped (end of input) after 20 tracked frames; camera released"


@pytest.mark.timeout(180)
def test_robot_example_stops_cleanly_on_ctrl_c(clip):
    video, box, _ = clip
    process = subprocess.Popen(
        [sys.executable, "demo/robot_camera_loop.py", "--camera", str(video), "--init",
         _init_arg(box)],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        seen = [process.stdout.readline() for _ in range(3)]
        assert all(line.startswith("frame ") for line in seen), seen
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, errors
    assert "Traceback" not in errors
    stopped = re.fullmatch(r"stopped \(Ctrl-C\) after (\d+) tracked frames; camera released",
                           rest.splitlines()[-1])
    assert stopped and 3 <= int(stopped.group(1)) < 2787


def test_image_folder_example_writes_the_api_boxes(folder, tmp_path):
    sequence, _, expected = folder
    out = tmp_path / "boxes.txt"
    result = _run(["demo/track_image_folder.py", str(sequence), "--out", str(out)], _env())
    assert result.returncode == 0, result.stderr
    assert f"{len(expected)} frames in" in result.stderr
    assert _read_boxes(out) == [r.box for r in expected]


@pytest.mark.parametrize(
    "script, args, expected",
    [
        ("track_image_folder.py", ["{tmp}", "--init", "1,1,5,5"], "error: no images in {tmp}"),
        ("track_image_folder.py", ["{sequence}", "--out", "{tmp}/no/such/boxes.txt"],
         "error: --out: the folder {tmp}/no/such does not exist"),
        ("track_image_folder.py", ["{sequence}", "--init", "1,2,3"],
         "error: --init: expected four comma-separated numbers x,y,w,h, got '1,2,3'"),
        ("robot_camera_loop.py", ["--camera", "{tmp}/missing.mp4", "--init", "1,1,5,5"],
         "error: cannot open camera {tmp}/missing.mp4"),
        ("robot_camera_loop.py", ["--camera", "{tmp}/missing.mp4", "--init", "1,1,5,5",
                                  "--max-frames", "0"],
         "error: argument --max-frames: expected a positive integer, got '0'"),
    ],
)
def test_examples_report_bad_input_in_one_line(script, args, expected, tmp_path):
    sequence = shared_path("data", "otb", FOLDER_SEQUENCE)
    filled = [a.format(tmp=tmp_path, sequence=sequence) for a in args]
    result = _run([f"demo/{script}", *filled], _env())
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert expected.format(tmp=tmp_path) in result.stderr.strip().splitlines()[-1]


# --- a real window, under a virtual X server ---------------------------------------------

_KEYSYMS = {"space": 0x20, "q": 0x71}


class _XKeyEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("root", ctypes.c_ulong),
        ("subwindow", ctypes.c_ulong), ("time", ctypes.c_ulong), ("x", ctypes.c_int),
        ("y", ctypes.c_int), ("x_root", ctypes.c_int), ("y_root", ctypes.c_int),
        ("state", ctypes.c_uint), ("keycode", ctypes.c_uint), ("same_screen", ctypes.c_int),
        ("pad", ctypes.c_long * 24),  # XSendEvent copies a whole XEvent union
    ]


class _XWindowAttributes(ctypes.Structure):
    _fields_ = [
        ("x", ctypes.c_int), ("y", ctypes.c_int), ("width", ctypes.c_int),
        ("height", ctypes.c_int), ("border_width", ctypes.c_int), ("depth", ctypes.c_int),
        ("visual", ctypes.c_void_p), ("root", ctypes.c_ulong), ("class", ctypes.c_int),
        ("bit_gravity", ctypes.c_int), ("win_gravity", ctypes.c_int),
        ("backing_store", ctypes.c_int), ("backing_planes", ctypes.c_ulong),
        ("backing_pixel", ctypes.c_ulong), ("save_under", ctypes.c_int),
        ("colormap", ctypes.c_ulong), ("map_installed", ctypes.c_int), ("map_state", ctypes.c_int),
        ("all_event_masks", ctypes.c_long), ("your_event_mask", ctypes.c_long),
        ("do_not_propagate_mask", ctypes.c_long), ("override_redirect", ctypes.c_int),
        ("screen", ctypes.c_void_p),
    ]


_X_ERROR_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


class _X11:
    """Just enough Xlib, through ctypes, to find a window by title and type keys into it."""

    def __init__(self, display: str) -> None:
        try:
            self._lib = ctypes.CDLL("libX11.so.6")
        except OSError:
            pytest.skip("libX11 is not installed (the window test talks to Xvfb through it)")
        lib = self._lib
        lib.XOpenDisplay.restype = ctypes.c_void_p
        lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        lib.XDefaultRootWindow.restype = ctypes.c_ulong
        lib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        lib.XQueryTree.argtypes = [
            ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_ulong),
            ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.POINTER(ctypes.c_ulong)),
            ctypes.POINTER(ctypes.c_uint),
        ]
        lib.XFetchName.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_void_p)]
        lib.XGetWindowAttributes.argtypes = [
            ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(_XWindowAttributes)
        ]
        lib.XKeysymToKeycode.restype = ctypes.c_ubyte
        lib.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        lib.XSendEvent.argtypes = [
            ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
            ctypes.POINTER(_XKeyEvent),
        ]
        lib.XFree.argtypes = [ctypes.c_void_p]
        lib.XFlush.argtypes = [ctypes.c_void_p]
        lib.XCloseDisplay.argtypes = [ctypes.c_void_p]
        # Xlib's default error handler exits the process; a window that the demo destroys
        # while it is being looked at is expected here, so errors only make a call fail.
        self._ignore_errors = _X_ERROR_HANDLER(lambda display, event: 0)
        lib.XSetErrorHandler.argtypes = [_X_ERROR_HANDLER]
        lib.XSetErrorHandler.restype = ctypes.c_void_p
        lib.XSetErrorHandler(self._ignore_errors)
        self._display = lib.XOpenDisplay(display.encode())
        assert self._display, f"cannot connect to Xvfb at {display}"
        self._root = lib.XDefaultRootWindow(self._display)

    def close(self) -> None:
        self._lib.XCloseDisplay(self._display)

    def find_window(self, title_prefix: str) -> Optional[int]:
        """A mapped window whose title starts with ``title_prefix``, searched depth first."""
        pending = [self._root]
        while pending:
            window = pending.pop()
            viewable = self.attributes(window).map_state == 2  # IsViewable
            if viewable and self._title(window).startswith(title_prefix):
                return window
            pending.extend(self._children(window))
        return None

    def attributes(self, window: int) -> _XWindowAttributes:
        """The window's place and state (all zero once the window is gone)."""
        attributes = _XWindowAttributes()
        self._lib.XGetWindowAttributes(self._display, window, ctypes.byref(attributes))
        return attributes

    def press(self, window: int, key: str) -> None:
        """Send a key press and release to ``window`` (XSendEvent; no XTest extension needed)."""
        keycode = self._lib.XKeysymToKeycode(self._display, _KEYSYMS[key])
        # (KeyPress, KeyPressMask), then (KeyRelease, KeyReleaseMask)
        for event_type, mask in ((2, 1), (3, 2)):
            event = _XKeyEvent(type=event_type, display=self._display, window=window,
                               root=self._root, keycode=keycode, same_screen=1)
            self._lib.XSendEvent(self._display, window, 1, mask, ctypes.byref(event))
        self._lib.XFlush(self._display)

    def _title(self, window: int) -> str:
        name = ctypes.c_void_p()
        if not self._lib.XFetchName(self._display, window, ctypes.byref(name)) or not name.value:
            return ""
        title = ctypes.string_at(name.value).decode("utf-8", "replace")
        self._lib.XFree(name)
        return title

    def _children(self, window: int) -> List[int]:
        root, parent = ctypes.c_ulong(), ctypes.c_ulong()
        children, count = ctypes.POINTER(ctypes.c_ulong)(), ctypes.c_uint()
        if not self._lib.XQueryTree(self._display, window, ctypes.byref(root), ctypes.byref(parent),
                                    ctypes.byref(children), ctypes.byref(count)):
            return []
        found = [children[i] for i in range(count.value)]
        if children:
            self._lib.XFree(children)
        return found


@contextlib.contextmanager
def _xvfb(folder: Path) -> Iterator[Tuple[str, Path]]:
    """A virtual X server: its display name and the XWD file that mirrors its screen."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian: apt-get install xvfb)")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1024x768x24", "-fbdir",
         str(folder), "-nolisten", "tcp"],
        pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 30)
        number = os.read(read_end, 32).decode().strip() if ready else ""
        assert number.isdigit(), "Xvfb did not start"
        yield f":{number}", folder / "Xvfb_screen0"
    finally:
        os.close(read_end)
        server.terminate()
        server.wait(timeout=30)


def _screenshot(xwd: Path) -> np.ndarray:
    """The virtual screen as a BGR image, read from Xvfb's XWD framebuffer file."""
    data = xwd.read_bytes()
    header = struct.unpack(">25I", data[:100])
    header_size, width, height, byte_order = header[0], header[4], header[5], header[7]
    bits_per_pixel, bytes_per_line, colormap_entries = header[11], header[12], header[19]
    assert bits_per_pixel == 32 and byte_order == 0, "expected a 24-bit LSB-first screen"
    offset = header_size + 12 * colormap_entries
    rows = np.frombuffer(data, np.uint8, bytes_per_line * height, offset).reshape(height, -1)
    return rows[:, : width * 4].reshape(height, width, 4)[:, :, :3].copy()


def _pause_and_quit(demo: subprocess.Popen, x11: _X11, framebuffer: Path) -> np.ndarray:
    """Wait until the demo's window plays frames, pause it with space, take the screenshot of
    the paused window, then quit with q. Returns the screenshot (the window's area)."""

    def running(condition: Callable[[], Optional[T]]) -> Callable[[], Optional[T]]:
        def check() -> Optional[T]:
            if demo.poll() is not None:
                pytest.fail(f"the demo ended early: {demo.communicate()}")
            return condition()

        return check

    window = _wait_for(running(lambda: x11.find_window("tracker.demo - video ")), 120, "the window")

    def window_image() -> Optional[np.ndarray]:
        """The window's area of the screen, once the window has the frame's size."""
        place = x11.attributes(window)
        if (place.width, place.height) != (640, 360):
            return None
        screen = _screenshot(framebuffer)
        return screen[place.y:place.y + place.height, place.x:place.x + place.width]

    def box_drawn() -> Optional[np.ndarray]:
        image = window_image()
        boxed = image is not None and np.all(image == TRACKING_COLOR, axis=2).sum() > 50
        return image if boxed else None

    first = _wait_for(running(box_drawn), 120, "a frame with the green box in the window")
    _wait_for(running(lambda: None if np.array_equal(window_image(), first) else True), 120,
              "the window to show the next frames")
    x11.press(window, "space")
    # The paused footer is opaque, so it looks the same on every frame.
    footers = [np.full((360, 640, 3), value, np.uint8) for value in (0, 255)]
    for footer in footers:
        draw_text(footer, [(PAUSED_HINT, TEXT_COLOR)], top=False)
    panel = np.all(footers[0] == footers[1], axis=2)

    def paused_image() -> Optional[np.ndarray]:
        image = window_image()
        return image if np.array_equal(image[panel], footers[0][panel]) else None

    shot = _wait_for(running(paused_image), 60, "the paused footer after space")
    x11.press(window, "q")
    return shot


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("targets", [1, 2])
def test_window_shows_the_tracked_box_and_quits_on_a_key(targets, clip, tmp_path):
    if re.search(r"GUI: +NONE", cv2.getBuildInformation()):
        pytest.skip("this OpenCV has no window support (opencv-python-headless)")
    video, box, _ = clip
    inits = [box, SECOND_BOX][:targets]
    boxes = tmp_path / "boxes.csv"
    (tmp_path / "fb").mkdir()
    with _xvfb(tmp_path / "fb") as (display, framebuffer):
        x11 = _X11(display)
        demo = subprocess.Popen(
            [sys.executable, "-m", "tracker.demo", "--video", str(video),
             *itertools.chain.from_iterable(("--init", _init_arg(b)) for b in inits),
             "--save-boxes", str(boxes)],
            cwd=ROOT, env=_env(DISPLAY=display), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        try:
            shot = _pause_and_quit(demo, x11, framebuffer)
            out, errors = demo.communicate(timeout=60)
        finally:
            demo.kill()
            x11.close()
    assert demo.returncode == 0, errors
    assert "QFontDatabase" not in errors
    cv2.imwrite(str(tmp_path / "window.png"), shot)

    rows = _saved_rows(boxes)
    saved = _saved_boxes(boxes)
    assert sorted(saved) == list(range(targets))
    frames = len(saved[0])
    assert f"frames: {frames}\n" in out and 2 <= frames < 2788
    # The window shows the frame the demo stopped on, with each target's last saved box in its
    # colour (red while lost; the status panel's LOST line, above row 40, is red too).
    for target in range(targets):
        *_, (_, _, last, _, lost) = (row for row in rows if row[1] == target)
        color, below = (LOST_COLOR, 40) if lost else (target_color(target), 0)
        ys, xs = np.nonzero(np.all(shot[below:] == color, axis=2))
        ys += below
        (left, top), (right, bottom) = box_corners(last)
        for drawn, expected in ((xs.min(), left), (ys.min(), top), (xs.max(), right),
                                (ys.max(), bottom)):
            assert abs(int(drawn) - expected) <= 2, (target, last, xs.min(), ys.min())
    *_, frame = _video_frames(video, frames)
    middle = slice(60, 300)  # below the status panel, above the keys line
    difference = np.abs(shot[middle].astype(int) - frame[middle].astype(int))
    assert np.median(difference) <= 2


class _ShortSource(FrameSource):
    """A source whose container announces ``announced`` frames but gives ``given``."""

    def __init__(self, announced: int, given: int) -> None:
        super().__init__("video short.mp4", 10.0, announced)
        self._left = given

    def read(self) -> Optional[np.ndarray]:
        if self._left == 0:
            return None
        self._left -= 1
        return np.zeros((20, 30, 3), np.uint8)


@pytest.mark.parametrize("announced, given, max_frames, expected", [
    (10, 4, None, 10), (4, 4, None, None), (10, 10, 3, None), (0, 4, None, None)])
def test_a_video_ending_before_its_frame_count_is_reported(announced, given, max_frames, expected,
                                                           tmp_path):
    source = _ShortSource(announced, given)
    recorder = Recorder(None, None, (30, 20), source.fps)
    summary = run(_ScriptedTracker([False] * 10), source, source.read(),
                  [(1.0, 2.0, 5.0, 6.0)], window=None, recorder=recorder, max_frames=max_frames)
    assert summary.expected_frames == expected
    warning = f"warning: video ended after {summary.frames} of {announced} frames: truncated or corrupt"
    assert (warning in summary.lines()) == (expected is not None)
    assert cli.ENDED_EARLY_EXIT == 3 and "3 the video ended before" in cli.EXAMPLES
