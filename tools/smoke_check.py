"""Smoke check of an installed tracker package (a wheel in a fresh virtualenv), run by CI.

Run it with the virtualenv's python from a folder outside the checkout, so that only the
installed package can be imported:

    cd /tmp && /path/to/venv/bin/python /path/to/repo/tools/smoke_check.py \
        --clip ../shared/data/clips/airplane-1.mp4

It lists the models, describes nanotrack-v2 (licence and checkpoint entry), builds it (weights
through ``TRACKER_WEIGHTS``), starts it on the clip's first annotated box and runs 10 updates,
checking each box is finite and inside the frame; the trainer's command and recipes import
(the wheel holds every subpackage). One summary line; exit status 1 on failure.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import sysconfig
import time
from importlib import metadata
from pathlib import Path
from typing import List, Optional, Sequence

MODEL = "nanotrack-v2"
UPDATES = 10


def _default_clip() -> Path:
    shared = Path(os.environ.get("TRACKER_SHARED", "../shared"))
    return shared / "data" / "clips" / "airplane-1.mp4"


def check(clip: Path) -> str:
    """Run every check; the summary line on success, ``AssertionError`` naming what failed."""
    import tracker
    from tracker import clips

    installed = Path(sysconfig.get_paths()["purelib"]).resolve()
    location = Path(tracker.__file__).resolve()
    assert installed in location.parents, (
        f"tracker imported from {location}, not from this environment's site-packages {installed}")

    models = tracker.list_models()
    assert MODEL in models, f"{MODEL} missing from list_models(): {models}"
    record = tracker.describe(MODEL)
    assert record.get("license") == "Apache-2.0", f"describe({MODEL!r}) licence: {record.get('license')!r}"
    checkpoint = record.get("artifacts", {}).get("checkpoint", {})
    digest = str(checkpoint.get("sha256", ""))
    assert len(digest) == 64 and checkpoint.get("file"), (
        f"describe({MODEL!r}) has no checkpoint entry with a sha256: {checkpoint!r}")

    from tracker.train.cli import build_parser as train_parser
    from tracker.train.recipes import default_recipe

    assert default_recipe(MODEL, finetune=True).optim.freeze_bn, "the trainer's recipes"
    train_parser()

    start = time.perf_counter()
    trk = tracker.build_tracker(MODEL)
    box = clips.first_box(clip, "--clip")
    frames = clips.frames(clip, "--clip")
    first = next(frames)
    height, width = first.shape[:2]
    trk.init(first, box)
    boxes: List[Sequence[float]] = []
    for frame in frames:
        boxes.append(trk.update(frame).box)
        if len(boxes) == UPDATES:
            break
    seconds = time.perf_counter() - start
    assert len(boxes) == UPDATES, f"{clip} has only {len(boxes) + 1} frames, {UPDATES + 1} needed"
    for index, (x, y, w, h) in enumerate(boxes, start=1):
        assert all(math.isfinite(v) for v in (x, y, w, h)), f"update {index}: box {(x, y, w, h)} not finite"
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= width and y + h <= height, (
            f"update {index}: box {(x, y, w, h)} outside the {width}x{height} frame")
    last = ", ".join(f"{v:.1f}" for v in boxes[-1])
    return (f"smoke check passed: tracker {metadata.version('tracker')} from {location.parent}; {len(models)} models; {MODEL} {record['license']}; "
            f"{UPDATES} updates on {clip.name} in {seconds:.1f} s, last box ({last})")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", type=Path, default=None,
                        help="annotated clip (default: $TRACKER_SHARED/data/clips/airplane-1.mp4)")
    args = parser.parse_args(argv)
    clip = args.clip or _default_clip()
    try:
        print(check(clip))
    except AssertionError as error:
        print(f"smoke check FAILED: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # an installed package that crashes is what this check reports
        print(f"smoke check FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
