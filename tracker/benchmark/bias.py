"""bias: where a network places its boxes relative to the target, on average.

Tracks every sequence of a benchmark folder with each --model as the references do (the
short-term loop, no centre correction: ``long_term=False, center_bias=(0, 0)``), and over the
frames tracked well (IoU with the ground truth above 0.5, after the first) measures the signed
offset of the box centre from the ground truth's centre. Two explanations are fitted: a
constant offset in frame pixels, and a constant in exemplar-crop pixels (the offset times
``exemplar_size / context size`` of the tracked box: the scale the network saw the target at,
so that in frame pixels it shrinks as the target grows). Each is the median over all those
frames; its residual is the root mean square, in frame pixels, of what it leaves unexplained.
The one with the smaller residual explains the bias; ``center_bias`` in a model's record is
the frame-pixel median, which explains it for every published NanoTrack network.
Boxes are compared in the library's 0-based convention (the files' 1-based numbers converted).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
from got10k.utils.metrics import rect_iou
from tqdm import tqdm

from .. import api
from ..cli_args import backend_options, positive_int
from ..geometry import context_size
from ..zoo import list_models
from .datasets import DATASETS, GOT10kFolder, SequenceFolder, open_dataset, present_frames
from .experiments import ToolkitTracker

#: Frames count when their IoU with the ground truth is above this.
TRACKED_IOU = 0.5


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``bias`` subcommand."""
    parser = commands.add_parser(
        "bias", help="measure where a network places boxes relative to the target",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", required=True, choices=DATASETS, help="folder layout")
    parser.add_argument("--root", required=True, type=Path, help="the benchmark folder")
    parser.add_argument("--subset", default="val", choices=GOT10kFolder.SUBSETS,
                        help="GOT-10k subset (default val)")
    parser.add_argument("--model", action="append", dest="models", required=True, metavar="NAME",
                        help=f"model to measure (repeatable): {', '.join(list_models())}")
    parser.add_argument("--backend", default="torch", choices=api.BACKENDS,
                        help="inference backend (default torch)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="onnxruntime intra-op threads (default: the model's policy)")
    parser.set_defaults(run=run_bias)


@dataclass(frozen=True)
class ModelBias:
    """One model's offsets (x, y): the frame-pixel and the crop-pixel constant (medians over
    all tracked frames), each with its residual (root mean square, frame pixels)."""

    name: str
    frames: int
    frame_px: Tuple[float, float]
    crop_px: Tuple[float, float]
    frame_px_residual: Tuple[float, float]
    crop_px_residual: Tuple[float, float]

    @property
    def explained_by(self) -> str:
        """``"frame px"`` or ``"crop px"``: the constant that leaves the smaller residual."""
        frame = float(np.hypot(*self.frame_px_residual))
        crop = float(np.hypot(*self.crop_px_residual))
        return "frame px" if frame <= crop else "crop px"


def measure_bias(
    dataset: SequenceFolder, models: Sequence[str], backend: str = "torch",
    threads: Optional[int] = None, progress: bool = True,
) -> List[ModelBias]:
    """The offsets of each model on every sequence of ``dataset`` (see the module doc)."""
    if dataset.first_box_only:
        raise ValueError("the bias needs ground truth on every frame (GOT-10k test has none)")
    results = []
    for model in models:
        trk = api.build_tracker(model, backend=backend, long_term=False, center_bias=(0.0, 0.0),
                                **backend_options(backend, threads))
        context = trk.config.tracking.context_amount
        exemplar = trk.config.tracking.exemplar_size
        offsets: List[np.ndarray] = []
        scales: List[np.ndarray] = []
        for seq_name in tqdm(dataset.seq_names, desc=model, disable=not progress, leave=False):
            boxes, truth = _track(trk, dataset, seq_name)
            tracked = present_frames(truth)
            tracked[0] = False
            tracked[tracked] = rect_iou(boxes[tracked], truth[tracked]) > TRACKED_IOU
            offset = (boxes[:, :2] + boxes[:, 2:] / 2) - (truth[:, :2] + truth[:, 2:] / 2)
            scale = exemplar / np.array([context_size(w, h, context) for w, h in boxes[:, 2:]])
            offsets.append(offset[tracked])
            scales.append(scale[tracked])
        results.append(_summary(model, np.concatenate(offsets), np.concatenate(scales)))
    return results


def _track(trk: api.Tracker, dataset: SequenceFolder, seq_name: str) -> Tuple[np.ndarray, np.ndarray]:
    """Boxes and ground truth of one sequence, both 0-based, tracked as ``accuracy`` tracks."""
    img_files, anno = dataset[seq_name][:2]
    runner = ToolkitTracker(trk.name, trk, dataset.box_origin)
    decoded = getattr(dataset, "frames", None)
    if decoded is not None:
        boxes, _ = runner.track_frames(decoded(seq_name), anno[0])
    else:
        boxes, _ = runner.track(img_files, anno[0], visualize=False)
    origin = [dataset.box_origin, dataset.box_origin, 0, 0]
    return np.asarray(boxes, dtype=float) - origin, np.asarray(anno, dtype=float) - origin


def _summary(model: str, offsets: np.ndarray, scales: np.ndarray) -> ModelBias:
    """Fit both constants to the frame-pixel ``offsets`` seen at crop ``scales``."""
    if not len(offsets):
        raise ValueError(f"{model}: no frame tracked with IoU above {TRACKED_IOU}")

    def pair(values: np.ndarray) -> Tuple[float, float]:
        return float(values[0]), float(values[1])

    def rms(residual: np.ndarray) -> Tuple[float, float]:
        return pair(np.sqrt(np.mean(residual ** 2, axis=0)))

    frame_px = np.median(offsets, axis=0)
    crop_px = np.median(offsets * scales[:, None], axis=0)
    return ModelBias(
        name=model,
        frames=len(offsets),
        frame_px=pair(frame_px),
        crop_px=pair(crop_px),
        frame_px_residual=rms(offsets - frame_px),
        crop_px_residual=rms(offsets - crop_px / scales[:, None]),
    )


def format_bias(results: Sequence[ModelBias]) -> str:
    """The table ``bias`` prints."""
    from . import markdown

    def cell(values: Tuple[float, float]) -> str:
        return f"{values[0]:+.2f}, {values[1]:+.2f}"

    def size(values: Tuple[float, float]) -> str:
        return f"{values[0]:.3f}, {values[1]:.3f}"

    rows = [[r.name, str(r.frames), cell(r.frame_px), size(r.frame_px_residual), cell(r.crop_px),
             size(r.crop_px_residual), r.explained_by] for r in results]
    header = ["model", "frames", "frame px (x, y)", "residual", "crop px (x, y)", "residual",
              "explained by"]
    return markdown.text_table(header, rows)


def run_bias(args: argparse.Namespace) -> int:
    """``bias``: measure and print."""
    dataset = open_dataset(args.dataset, args.root, args.subset)
    results = measure_bias(dataset, args.models, args.backend, args.threads)
    print(format_bias(results))
    print("offset = box centre - ground-truth centre (x right, y down), median over the frames "
          f"with IoU > {TRACKED_IOU}; residual = root mean square (frame px) of the offsets less "
          "each constant (the crop-px one divided by each frame's crop scale)")
    return 0

