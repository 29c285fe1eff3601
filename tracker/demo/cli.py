"""Command line of ``python -m tracker.demo``: arguments, model choice, one-line errors."""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
from typing import List, NoReturn, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..api import BACKENDS
from ..cli_args import apply_thread_policy, backend_options, parse_box, positive_int
from ..errors import TrackerError
from ..geometry import Box
from ..inputs import as_box
from ..multi import MultiTracker, build_multi_tracker
from ..weights import find_weights
from ..zoo import get_config, list_models
from .display import Window, headless_reason
from .session import BOXES_HEADER, Recorder, RunSummary, check_folder, run
from .sources import DEFAULT_FPS, FrameSource, open_images, open_video, open_webcam

#: Default models, best CPU real-time first; the first whose weights are present is used.
PREFERRED_MODELS = ("nanotrack-v2", "nanotrack-v3", "nanotrack-v1")
#: The weight files each backend loads (artifact kinds of the model records).
BACKEND_ARTIFACTS = {"torch": ("checkpoint",), "onnxruntime": ("onnx_backbone", "onnx_head")}
#: Exit status when Ctrl-C comes before tracking starts (128 + SIGINT, as shells report it);
#: a run stopped by Ctrl-C while tracking closes its outputs, prints its summary and exits 0.
INTERRUPTED_EXIT = 130
ERROR_EXIT = 2
#: Exit status when a video ends before the frame count its container announces.
ENDED_EARLY_EXIT = 3

DESCRIPTION = """\
Follow one or several objects through a video file, a webcam or a folder of images.

Each target is one --init box (repeat --init for several) and gets an id: 0, 1, 2, ... in the
order given. All targets are tracked together (tracker.MultiTracker: their search crops go
through the network in shared batches).

With a display, the frames are shown in a window: each target's box in its own colour (red
while it is lost) with its id, score and LOST state next to it (SEARCHING while a long-term
model re-detects it), and the frame rate. Without
--init you draw the targets on the first frame with the mouse: draw a box and press SPACE or
ENTER to add it (it stays drawn), draw the next one the same way, then press SPACE or ENTER
with no box drawn to start tracking (c cancels the box being drawn and ends the selection).
Keys: q or Esc quits, space pauses, r re-selects the targets (all of them, drawn the same way;
they get new ids; drawing none keeps the current targets).

Without a display (or with --no-display) a progress bar runs on stderr and --init is needed.
Every run ends with a summary on stdout: frames, latency per frame (mean, p95), frames flagged
lost (with several targets: on how many any target was, then one line per target), and the
files written.

Boxes are x,y,w,h in pixels, (0, 0) being the top-left corner of the frame."""

EXAMPLES = """\
examples:
  python -m tracker.demo --video clip.mp4
  python -m tracker.demo --video ../shared/data/clips/airplane-1.mp4 --init 366,100,41,16
  python -m tracker.demo --video clip.mp4 --init 366,100,41,16 --init 80,200,60,40 \\
      --save-boxes boxes.csv
  python -m tracker.demo --webcam 0 --model nanotrack-v3 --threads 2
  python -m tracker.demo --images frames/ --init 120,80,40,60 --no-display \\
      --output annotated.mp4 --save-boxes boxes.csv

""" + textwrap.fill("models: " + ", ".join(list_models()), width=90) + """
weights are looked up in $TRACKER_WEIGHTS, the project's weights/ folder and the user cache;
NanoTrack's (Apache-2.0, Copyright HonglinChu) are downloaded on first use. See
weights/README.md for every model's source and licence.

a box with a negative coordinate can be written --init -10,-5,40,60 or --init=-10,-5,40,60.

--save-boxes writes CSV: the header line """ + BOXES_HEADER + """, then one row per target
per frame, the targets of a frame in id order, for example:
  """ + BOXES_HEADER + """
  0,0,366.0,100.0,41.0,16.0,,0
  0,1,80.0,200.0,60.0,40.0,,0
  1,0,366.91,100.32,40.87,16.05,0.974,0
  1,1,80.12,199.6,60.3,40.1,0.31,1
frame counts from 0 (the first frame, where the boxes are the --init boxes); id is the
target's; x,y,w,h is its box, written exactly (Python's repr of the float); score is the
tracker's confidence in [0, 1], empty on a frame where the target was set (the first frame,
and the frame of an r re-selection); lost is 1 when the target is flagged lost, else 0.

exit status: 0 done (also after --max-frames, q or Ctrl-C while tracking), 2 error or bad
input (one line on stderr), 3 the video ended before its container's frame count (truncated
or corrupt; the summary says after how many frames), 130 Ctrl-C before tracking started."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(ERROR_EXIT)


def _camera_index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a camera number (0, 1, ...), got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m tracker.demo",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inputs = parser.add_argument_group("input (one of)").add_mutually_exclusive_group(required=True)
    inputs.add_argument("--video", metavar="PATH",
                        help="a video file, stream URL or image pattern (anything OpenCV reads)")
    inputs.add_argument("--webcam", metavar="INDEX", type=_camera_index,
                        help="a camera by number (0 = the first camera)")
    inputs.add_argument("--images", metavar="DIR",
                        help="a folder of image files, tracked in name order "
                             "(frame2 before frame10)")
    tracking = parser.add_argument_group("target and model")
    tracking.add_argument("--init", metavar="X,Y,W,H", type=parse_box, action="append",
                          help="a target's box on the first frame, in pixels; repeat for "
                               "several targets (ids 0, 1, ... in this order); without it you "
                               "draw the targets with the mouse (needs a display)")
    tracking.add_argument("--model", metavar="NAME",
                          help=f"model to run (default: the first of {', '.join(PREFERRED_MODELS)} "
                               "whose weights are present)")
    tracking.add_argument("--weights", metavar="PATH",
                          help="torch: the model's checkpoint file; onnxruntime: a folder written "
                               "by python -m tracker.export, or its model.json (default: looked "
                               "up, see below)")
    tracking.add_argument("--backend", choices=BACKENDS, default="torch",
                          help="inference backend (default: torch)")
    tracking.add_argument("--threads", metavar="N", type=positive_int,
                          help="CPU threads for OpenCV and the backend (default: theirs)")
    tracking.add_argument("--max-frames", metavar="N", type=positive_int,
                          help="stop after N frames (the first frame counts)")
    outputs = parser.add_argument_group("output")
    outputs.add_argument("--output", metavar="VIDEO",
                         help="write the annotated frames to this video (mp4v codec, the input's "
                              f"size and frame rate; {DEFAULT_FPS:.0f} fps for webcams and images)")
    outputs.add_argument("--save-boxes", metavar="FILE",
                         help=f"write the boxes as CSV: a {BOXES_HEADER} header, then one row "
                              "per target per frame (see below)")
    outputs.add_argument("--no-display", action="store_true",
                         help="no window, a progress bar instead (automatic without a display)")
    return parser


def choose_model(model: Optional[str], weights: Optional[str], backend: str) -> Tuple[str, str]:
    """The model to run and why it was chosen (empty when the user named it).

    Raises :class:`~tracker.errors.UnknownNameError` for an unknown name.
    """
    if model is not None:
        return get_config(model).name, ""
    default = PREFERRED_MODELS[0]
    if weights is not None:
        return default, "the default; pass --model if --weights holds another model"
    for name in PREFERRED_MODELS:
        if all(find_weights(name, artifact) for artifact in BACKEND_ARTIFACTS[backend]):
            return name, "the fastest CPU model whose weights are present"
    return default, "the default; its weights are not present here and will be downloaded"


def open_source(args: argparse.Namespace) -> FrameSource:
    if args.video is not None:
        return open_video(args.video)
    if args.webcam is not None:
        return open_webcam(args.webcam)
    return open_images(args.images)


def _quiet_opencv() -> None:
    """Keep OpenCV's, FFmpeg's and Qt's warnings off stderr; the demo reports failures itself.

    opencv-python's Qt warns at every start that its font folder is missing; the window has no
    Qt text (OpenCV draws it), so that category is switched off unless the user set the rules.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.fonts=false")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def _open_window(title: str, frame_size: Tuple[int, int]) -> Optional[Window]:
    try:
        return Window(title, frame_size)
    except cv2.error:
        print("tracker.demo: this OpenCV has no window support (opencv-python-headless?); "
              "running without a window", file=sys.stderr)
        return None


def _track(args: argparse.Namespace) -> int:
    model, reason = choose_model(args.model, args.weights, args.backend)
    for path, option in ((args.output, "--output"), (args.save_boxes, "--save-boxes")):
        if path:
            check_folder(path, option)
    source = open_source(args)
    try:
        first = source.read()
        if first is None:
            raise ValueError(f"{source.label}: no frame could be read")
        boxes = _init_boxes(args.init or [], first.shape)
        headless = _headless_reason(args, bool(boxes))
        tracker = _load_tracker(model, reason, args)
        height, width = first.shape[:2]
        title = f"tracker.demo - {source.label}"
        window = None if headless else _open_window(title, (width, height))
        try:
            if not boxes:
                boxes = _select_targets(window, first)
            recorder = Recorder(args.output, args.save_boxes, (width, height), source.fps)
            if headless and not args.no_display:
                print(f"tracker.demo: {headless}; running without a window", file=sys.stderr)
            try:
                summary = run(tracker, source, first, boxes, window=window, recorder=recorder,
                              max_frames=args.max_frames)
            finally:
                recorder.close()
        finally:
            if window is not None:
                window.close()
    finally:
        source.release()
    print("\n".join(_summary_lines(summary, source, args)))
    if summary.ended_early:
        print(f"warning: {source.label} ended after {summary.frames} of "
              f"{summary.expected_frames} frames: truncated or corrupt", file=sys.stderr)
        return ENDED_EARLY_EXIT
    return 0


def _init_boxes(boxes: Sequence[Box], frame_shape: Tuple[int, ...]) -> List[Box]:
    """The --init boxes checked against the first frame; with several, the error names which
    (``--init #2``)."""
    if len(boxes) == 1:
        return [as_box(boxes[0], frame_shape, "--init")]
    return [as_box(box, frame_shape, f"--init #{n}") for n, box in enumerate(boxes, start=1)]


def _headless_reason(args: argparse.Namespace, has_box: bool) -> Optional[str]:
    """Why the run goes without a window (``None``: it gets one)."""
    reason = "--no-display" if args.no_display else headless_reason()
    if reason and not has_box:
        raise ValueError(
            f"--init x,y,w,h is needed without a window ({reason}): there is nowhere to draw "
            "the targets"
        )
    return reason


def _load_tracker(model: str, reason: str, args: argparse.Namespace) -> MultiTracker:
    torch_threads = apply_thread_policy(model, args.backend, args.threads)
    print(_model_line(model, reason, args, torch_threads), flush=True)
    return build_multi_tracker(model, args.weights, backend=args.backend,
                               **backend_options(args.backend, args.threads))


def _select_targets(window: Optional[Window], frame: np.ndarray) -> List[Box]:
    if window is None:
        raise ValueError("--init x,y,w,h is needed: this OpenCV cannot open a window")
    boxes = window.select_targets(frame)
    if not boxes:
        raise ValueError("no target selected (draw a box, or pass --init x,y,w,h)")
    return boxes


def _model_line(
    model: str, reason: str, args: argparse.Namespace, torch_threads: Optional[int] = None
) -> str:
    details = [args.backend, reason]
    if args.threads:
        details.append(f"{args.threads} thread{'s' if args.threads > 1 else ''}")
    elif torch_threads:
        details.append(f"{torch_threads} torch thread{'s' if torch_threads > 1 else ''} "
                       "(the model's default)")
    weights = args.weights or (find_weights(model) if args.backend == "torch" else None)
    if weights:
        details.append(f"weights {weights}")
    return f"model: {model} ({'; '.join(d for d in details if d)})"


def _summary_lines(summary: RunSummary, source: FrameSource, args: argparse.Namespace) -> List[str]:
    lines = [f"source: {source.label}", *summary.lines()]
    if args.save_boxes:
        lines.append(f"boxes: {args.save_boxes}")
    if args.output:
        lines.append(f"video: {args.output}")
    return lines


def attach_negative_values(argv: Sequence[str], options: Sequence[str] = ("--init",)) -> List[str]:
    """``--init -10,5,40,60`` as ``--init=-10,5,40,60``: argparse would read a value that
    starts with ``-`` (and is not a plain number) as an option."""
    joined: List[str] = []
    pending = None
    for arg in argv:
        if pending is not None and re.match(r"-[\d.]", arg):
            joined[-1] = f"{pending}={arg}"
        else:
            joined.append(arg)
        pending = arg if arg in options else None
    return joined


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the demo. Exit status: 0, 2 after an error, 3 when the video ended before its
    container's frame count, 130 for Ctrl-C before tracking starts."""
    args = build_parser().parse_args(attach_negative_values(sys.argv[1:] if argv is None else argv))
    _quiet_opencv()
    try:
        return _track(args)
    except KeyboardInterrupt:
        print("tracker.demo: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
    except (TrackerError, ValueError, OSError, ImportError, cv2.error) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return ERROR_EXIT
