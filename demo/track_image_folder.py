"""Tracking a folder of frames from a Python script.

Reads the images of a folder in name order, starts the tracker on the first one, and writes one
``x,y,w,h`` line per frame (the first line is the start box). For a folder in the OTB layout
(``img/`` and ``groundtruth_rect.txt``) the start box comes from the ground truth, converted
from OTB's 1-based pixels to the library's 0-based ones.

    python demo/track_image_folder.py ../shared/data/otb/Couple --out couple.txt
    python demo/track_image_folder.py frames/ --init 120,80,40,60 --out boxes.txt
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import cv2

import tracker
from tracker.cli_args import apply_thread_policy, parse_box
from tracker.image_files import list_images

Box = Tuple[float, float, float, float]


def frame_files(folder: Path) -> List[Path]:
    """The folder's images in playback order (``img/`` inside an OTB sequence folder)."""
    if (folder / "img").is_dir():
        folder = folder / "img"
    return list_images(folder)


def otb_first_box(folder: Path) -> Optional[Box]:
    """The first ground-truth box of an OTB sequence folder, 0-based, or ``None``."""
    truth = folder / "groundtruth_rect.txt"
    if not truth.is_file():
        return None
    first = truth.read_text().splitlines()[0].replace("\t", ",").replace(" ", ",")
    x, y, w, h = (float(v) for v in first.split(",") if v)
    return x - 1, y - 1, w, h


def track_frames(trk: tracker.Tracker, files: Sequence[Path], box: Box) -> List[Box]:
    """The box in every frame: ``box`` for the first, then one ``update`` per frame."""
    trk.init(cv2.imread(str(files[0])), box)
    boxes = [box]
    for path in files[1:]:
        boxes.append(trk.update(cv2.imread(str(path))).box)
    return boxes


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="folder of frames, or an OTB sequence folder")
    parser.add_argument("--init", metavar="X,Y,W,H", help="start box (default: OTB ground truth)")
    parser.add_argument("--model", default="nanotrack-v2")
    parser.add_argument("--out", type=Path, help="write the boxes here (default: print them)")
    args = parser.parse_args(argv)

    files = frame_files(args.folder) if args.folder.is_dir() else []
    if not files:
        print(f"error: no images in {args.folder}", file=sys.stderr)
        return 2
    if args.out and not args.out.absolute().parent.is_dir():
        print(f"error: --out: the folder {args.out.absolute().parent} does not exist",
              file=sys.stderr)
        return 2
    try:
        box = parse_box(args.init, "--init") if args.init else otb_first_box(args.folder)
        if box is None:
            raise ValueError("pass --init x,y,w,h (the folder has no groundtruth_rect.txt)")
        apply_thread_policy(args.model, "torch", None)  # the model's torch threads
        trk = tracker.build_tracker(args.model)
        start = time.perf_counter()
        boxes = track_frames(trk, files, box)
    except (tracker.TrackerError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    lines = [",".join(repr(v) for v in b) for b in boxes]
    if args.out:
        try:
            args.out.write_text("\n".join(lines) + "\n")
        except OSError as error:
            print(f"error: --out: cannot write {args.out}: {error.strerror}", file=sys.stderr)
            return 2
    else:
        print("\n".join(lines))
    print(f"{len(boxes)} frames in {seconds:.2f} s ({len(boxes) / seconds:.0f} FPS)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
