"""bias: where a network places its boxes relative to the target, on average.

Tracks every sequence of a benchmark folder with each --model as the references do (the
short-term loop, no centre correction: ``long_term=False, center_bias=(0, 0)``), and over the
frames tracked well (IoU with the ground truth above 0.5, after the first) measures the signed
offset of the box centre from the ground truth's centre, in frame pixels and in exemplar-crop
pixels (frame pixels times ``exemplar_size / context size`` of the tracked box: the scale the
network saw the target at). Prints per model the median offsets over all those frames and the
spread of the per-sequence medians; ``center_bias`` in a model's record is the crop-pixel median.
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
    """One model's offsets (x, y): medians over all tracked frames, and the per-sequence
    medians' standard deviation."""

    name: str
    frames: int
    frame_px: Tuple[float, float]
    crop_px: Tuple[float, float]
    frame_px_spread: Tuple[float, float]
    crop_px_spread: Tuple[float, float]


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
        frame_offsets: List[np.ndarray] = []
        crop_offsets: List[np.ndarray] = []
        for seq_name in tqdm(dataset.seq_names, desc=model, disable=not progress, leave=False):
            boxes, truth = _track(trk, dataset, seq_name)
            tracked = present_frames(truth)
            tracked[0] = False
            tracked[tracked] = rect_iou(boxes[tracked], truth[tracked]) > TRACKED_IOU
            offset = (boxes[:, :2] + boxes[:, 2:] / 2) - (truth[:, :2] + truth[:, 2:] / 2)
            scale = exemplar / np.array([context_size(w, h, context) for w, h in boxes[:, 2:]])
            frame_offsets.append(offset[tracked])
            crop_offsets.append(offset[tracked] * scale[tracked, None])
        results.append(_summary(model, frame_offsets, crop_offsets))
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


def _summary(model: str, frame_offsets: List[np.ndarray], crop_offsets: List[np.ndarray]) -> ModelBias:
    used = [i for i, offsets in enumerate(crop_offsets) if len(offsets)]
    if not used:
        raise ValueError(f"{model}: no frame tracked with IoU above {TRACKED_IOU}")

    def pair(values: np.ndarray) -> Tuple[float, float]:
        return float(values[0]), float(values[1])

    frames = np.concatenate([frame_offsets[i] for i in used])
    crops = np.concatenate([crop_offsets[i] for i in used])
    return ModelBias(
        name=model,
        frames=len(frames),
        frame_px=pair(np.median(frames, axis=0)),
        crop_px=pair(np.median(crops, axis=0)),
        frame_px_spread=pair(np.std([np.median(frame_offsets[i], axis=0) for i in used], axis=0)),
        crop_px_spread=pair(np.std([np.median(crop_offsets[i], axis=0) for i in used], axis=0)),
    )


def format_bias(results: Sequence[ModelBias]) -> str:
    """The table ``bias`` prints."""
    from . import markdown

    def cell(values: Tuple[float, float]) -> str:
        return f"{values[0]:+.2f}, {values[1]:+.2f}"

    rows = [[r.name, str(r.frames), cell(r.frame_px), cell(r.frame_px_spread), cell(r.crop_px),
             cell(r.crop_px_spread)] for r in results]
    header = ["model", "frames", "frame px (x, y)", "spread", "crop px (x, y)", "spread"]
    return markdown.text_table(header, rows)


def run_bias(args: argparse.Namespace) -> int:
    """``bias``: measure and print."""
    dataset = open_dataset(args.dataset, args.root, args.subset)
    results = measure_bias(dataset, args.models, args.backend, args.threads)
    print(format_bias(results))
    print("offset = box centre - ground-truth centre (x right, y down), median over the frames "
          f"with IoU > {TRACKED_IOU}; spread = standard deviation of the per-sequence medians")
    return 0

