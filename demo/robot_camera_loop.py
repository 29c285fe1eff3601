r"""Embedding the tracker in a robot's camera loop.

One ``Tracker.update`` per camera frame; each frame's box goes to a callback (where a robot
would steer its pan-tilt head or plan a grasp), with the frame's tracking latency. Ctrl-C stops
cleanly: the frame being tracked finishes, the camera is released, and the loop reports how
many frames it tracked, exiting with status 0.

    python demo/robot_camera_loop.py --camera 0 --init 200,150,80,60
    python demo/robot_camera_loop.py --camera ../shared/data/clips/airplane-1.mp4 \
        --init 366,100,41,16

``--camera`` is a camera number or anything ``cv2.VideoCapture`` opens (a file, an RTSP URL).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Callable, Optional, Sequence, Tuple

import cv2

import tracker
from tracker.cli_args import apply_thread_policy, parse_box, positive_int

Box = Tuple[float, float, float, float]
#: Called once per tracked frame with the frame number (the init frame is 0, the first tracked
#: frame 1), the result, and the seconds ``Tracker.update`` took.
BoxCallback = Callable[[int, tracker.TrackResult, float], None]


def follow(
    capture: cv2.VideoCapture,
    trk: tracker.Tracker,
    box: Box,
    on_box: BoxCallback,
    stop: threading.Event,
    max_frames: Optional[int] = None,
) -> int:
    """Start on the capture's next frame with ``box``, then track until ``stop`` is set, the
    frames run out or ``max_frames`` were tracked. Returns the number of frames tracked.
    """
    ok, frame = capture.read()
    if not ok:
        return 0
    trk.init(frame, box)
    tracked = 0
    while not stop.is_set() and tracked != max_frames:
        ok, frame = capture.read()
        if not ok:
            break
        start = time.perf_counter()
        result = trk.update(frame)
        tracked += 1
        on_box(tracked, result, time.perf_counter() - start)
    return tracked


def print_box(index: int, result: tracker.TrackResult, seconds: float) -> None:
    """The example's callback: one line per frame."""
    x, y, w, h = result.box
    state = "  LOST" if result.lost else ""
    print(
        f"frame {index:5d}  box {x:.2f},{y:.2f},{w:.2f},{h:.2f}  score {result.score:.3f}"
        f"  latency {seconds * 1000:.1f} ms{state}",
        flush=True,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--camera", default="0", help="camera number or video path (default 0)")
    parser.add_argument("--init", type=parse_box, required=True, metavar="X,Y,W,H",
                        help="the target's box in the first frame")
    parser.add_argument("--model", default="nanotrack-v2")
    parser.add_argument("--max-frames", type=positive_int, default=None, help="stop after N tracked frames")
    args = parser.parse_args(argv)

    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    capture = cv2.VideoCapture(int(args.camera) if args.camera.isdigit() else args.camera)
    try:
        if not capture.isOpened():
            print(f"error: cannot open camera {args.camera}", file=sys.stderr)
            return 2
        try:
            apply_thread_policy(args.model, "torch", None)  # the model's torch threads
            trk = tracker.build_tracker(args.model)
            frames = follow(capture, trk, args.init, print_box, stop, args.max_frames)
        except (tracker.TrackerError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    finally:
        capture.release()
        signal.signal(signal.SIGINT, previous)
    reason = "Ctrl-C" if stop.is_set() else "end of input"
    print(f"stopped ({reason}) after {frames} tracked frames; camera released", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
