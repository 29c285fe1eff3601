"""``python -m tracker.export``: a model as two ONNX graphs for the onnxruntime backend.

The template graph maps the exemplar crop to the kernel tensors; the search graph takes the
search crops (any batch and size) and the kernel tensors and returns the head outputs, so
one search graph serves every target. ``model.json`` beside them records the model config,
the opset and the graph interfaces. With ``--int8`` a statically quantized search graph is
written too (``search-int8.onnx`` with its own sidecar ``model-int8.json``), calibrated on
search crops taken while tracking a video.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from . import clips
from .backends.onnx_backend import SIDECAR, SIDECAR_FORMAT, default_export_dir
from .config import ModelConfig
from .errors import TrackerError
from .models.network import SiameseNetwork, build_model
from .zoo import get_config, list_models

OPSET = 18
INT8_SIDECAR = "model-int8.json"
_MAX_SEARCH_BATCH = 64
_MAX_SEARCH_SIZE = 1024


class _TemplateBranch(nn.Module):
    def __init__(self, network: SiameseNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, z: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return self.network.template(z)


class _SearchBranch(nn.Module):
    def __init__(self, network: SiameseNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor, kernel: List[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        return tuple(self.network.track(tuple(kernel), x).values())


def export_model(
    config: ModelConfig,
    network: SiameseNetwork,
    out_dir: Union[str, "os.PathLike[str]"],
    *,
    opset: int = OPSET,
    weights: Optional[Path] = None,
) -> Path:
    """Write ``template.onnx``, ``search.onnx`` and ``model.json`` into ``out_dir``.

    Both graphs are checked with ``onnx.checker``. Returns the sidecar's path.
    """
    import onnx
    from torch.export import Dim

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    params = config.tracking
    network = network.cpu().eval()
    z = torch.zeros(1, 3, params.exemplar_size, params.exemplar_size)
    x = torch.zeros(getattr(params, "scale_num", 1), 3, params.instance_size, params.instance_size)
    kernel = network.template(z)
    outputs = list(network.track(kernel, x))
    kernel_names = [f"kernel_{i}" for i in range(len(kernel))]
    side = Dim("search_size", min=params.exemplar_size, max=_MAX_SEARCH_SIZE)
    graphs = {
        "template": (_TemplateBranch(network), (z,), None, ["z"], kernel_names),
        "search": (
            _SearchBranch(network), (x, list(kernel)),
            {"x": {0: Dim("batch", min=1, max=_MAX_SEARCH_BATCH), 2: side, 3: side},
             "kernel": [None] * len(kernel)},
            ["x"] + kernel_names, outputs,
        ),
    }
    sidecar: Dict[str, Any] = {
        "format": SIDECAR_FORMAT,
        "model": config.name,
        "opset": opset,
        "precision": "float32",
        "config": config.to_dict(),
        "exported_with": {"torch": torch.__version__, "onnx": onnx.__version__},
        "weights": _describe_weights(weights),
    }
    for part, (module, args, dynamic, inputs, names) in graphs.items():
        path = out_dir / f"{part}.onnx"
        with _quiet_exporter():
            program = torch.onnx.export(
                module.eval(), args, dynamo=True, opset_version=opset, dynamic_shapes=dynamic,
                input_names=inputs, output_names=names, verbose=False, external_data=False,
            )
            program.save(str(path), external_data=False)
        onnx.checker.check_model(str(path), full_check=True)
        sidecar[part] = {"file": path.name, "inputs": inputs, "outputs": names}
    sidecar_path = out_dir / SIDECAR
    sidecar_path.write_text(json.dumps(sidecar, indent=2) + "\n")
    return sidecar_path


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Hide torch's exporter chatter (progress lines, deprecation and registry warnings)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _describe_weights(weights: Optional[Path]) -> Optional[Dict[str, str]]:
    if weights is None:
        return None
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    return {"file": Path(weights).name, "sha256": digest}


def calibration_blobs(
    config: ModelConfig, sidecar: Path, video: Path, box: Sequence[float], count: int
) -> Iterator[Dict[str, np.ndarray]]:
    """Search-graph inputs recorded while the float export tracks ``video`` from ``box``."""
    from .api import Tracker
    from .backends.onnx_backend import load_exported

    runner = load_exported(config, sidecar)
    feeds: List[Dict[str, np.ndarray]] = []

    class Recorder:
        def template(self, z: np.ndarray):
            return runner.template(z)

        def track(self, kernel, search: np.ndarray):
            inputs = {"x": search}
            inputs.update({f"kernel_{i}": k for i, k in enumerate(kernel)})
            feeds.append(inputs)
            return runner.track(kernel, search)

    trk = Tracker(config, Recorder())
    video_frames = clips.frames(video, "--calibration")
    trk.init(next(video_frames), tuple(box))
    for frame in video_frames:
        if len(feeds) >= count:
            break
        trk.update(frame)
    return iter(feeds)


def export_int8(
    config: ModelConfig, out_dir: Path, video: Path, box: Sequence[float], frames: int
) -> Path:
    """Quantize the search graph (QDQ, per-channel int8 weights, uint8 activations)."""
    from onnxruntime.quantization import (
        CalibrationDataReader, QuantFormat, QuantType, quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    sidecar = json.loads((out_dir / SIDECAR).read_text())
    feeds = calibration_blobs(config, out_dir / SIDECAR, video, box, frames)

    class Reader(CalibrationDataReader):
        def get_next(self) -> Optional[Dict[str, np.ndarray]]:
            return next(feeds, None)

    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "search-prepared.onnx"
        quant_pre_process(str(out_dir / "search.onnx"), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(out_dir / "search-int8.onnx"), Reader(),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        )
    sidecar["precision"] = "int8 (search graph), float32 (template graph)"
    sidecar["search"] = dict(sidecar["search"], file="search-int8.onnx")
    sidecar["calibration"] = {"video": str(video), "box": list(box), "frames": frames}
    path = out_dir / INT8_SIDECAR
    path.write_text(json.dumps(sidecar, indent=2) + "\n")
    return path


def evaluate_int8(
    config: ModelConfig, out_dir: Path, video: Path, box: Sequence[float], otb_root: Path,
    frames: int = 300,
) -> List[str]:
    """Float vs int8 export: ``update`` speed on ``video`` and accuracy on an OTB-layout folder.

    Accuracy goes through ``python -m tracker.benchmark accuracy`` (the got10k toolkit's
    numbers); speed is the median and mean ``update`` time after a warm-up, the two
    variants timed in turns.
    """
    import itertools

    from .api import build_tracker
    from .benchmark.__main__ import main as benchmark
    from .benchmark.accuracy import tracker_name
    from .benchmark.speed import WARMUP_FRAMES, summarize, time_interleaved

    clip = list(itertools.islice(clips.frames(video, "--calibration"), frames + WARMUP_FRAMES + 1))
    variants = (("float32", SIDECAR), ("int8", INT8_SIDECAR))
    trackers = [build_tracker(config.name, out_dir / sidecar, backend="onnxruntime")
                for _, sidecar in variants]
    for trk in trackers:
        trk.init(clip[0], tuple(box))
    seconds = time_interleaved([trk.update for trk in trackers], clip[1:], WARMUP_FRAMES)
    results = {}
    with tempfile.TemporaryDirectory(prefix="tracker-int8-") as scratch:
        for (label, sidecar), times in zip(variants, seconds):
            weights = out_dir / sidecar
            timing = summarize(label, "onnxruntime", 0, times)
            reports = Path(scratch) / label
            code = benchmark([
                "accuracy", "--dataset", "otb", "--root", str(otb_root), "--model", config.name,
                "--backend", "onnxruntime", "--weights", str(weights),
                "--results", str(reports / "results"), "--reports", str(reports / "reports"),
            ])
            if code != 0:
                raise TrackerError(f"--evaluate: the accuracy benchmark failed on {otb_root}")
            name = tracker_name(config.name, "onnxruntime", weights=weights)
            performance = json.loads((reports / "reports" / "OTB" / name / "performance.json").read_text())
            overall = performance[name]["overall"]
            results[label] = (timing, overall["success_score"], overall["precision_score"])
    (fast, auc_f, prec_f), (quant, auc_q, prec_q) = results["float32"], results["int8"]
    return [
        f"int8 vs float32 on {video.name} ({fast.frames} updates): median {quant.median_ms:.2f} vs "
        f"{fast.median_ms:.2f} ms, {quant.fps:.1f} vs {fast.fps:.1f} FPS, speed gain "
        f"{quant.fps / fast.fps:.2f}x",
        f"int8 vs float32 on {otb_root}: success AUC {auc_q:.4f} vs {auc_f:.4f} "
        f"({auc_q - auc_f:+.4f}), precision@20px {prec_q:.4f} vs {prec_f:.4f} ({prec_q - prec_f:+.4f})",
    ]


def _parse_box(text: str) -> Tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise ValueError(f"--calibration-box must be x,y,w,h, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tracker.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  python -m tracker.export --model siamrpnpp-alex --weights siamrpn_alex_dwxcorr.pth\n"
            "  python -m tracker.export --model nanotrack-v2 --out exports/nanotrack-v2 "
            "--int8 --calibration clip.mp4\n"
            "then: tracker.build_tracker(name, backend='onnxruntime', weights='exports/nanotrack-v2')"
        ),
    )
    parser.add_argument("--model", required=True, metavar="NAME", help=", ".join(list_models()))
    parser.add_argument("--weights", type=Path, help="checkpoint (default: found by the manifest)")
    parser.add_argument("--out", type=Path,
                        help="output folder (default: the user cache, where backend='onnxruntime' "
                             "looks with weights=None)")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    parser.add_argument("--int8", action="store_true", help="also write a quantized search graph")
    parser.add_argument("--calibration", type=Path, help="video for --int8 calibration")
    parser.add_argument("--calibration-box", help="x,y,w,h of the target in the video's first "
                        "frame (default: first line of the .txt beside the video, 1-based)")
    parser.add_argument("--calibration-frames", type=int, default=200,
                        help="frames used for calibration (default 200)")
    parser.add_argument("--evaluate", type=Path, metavar="OTB_DIR",
                        help="with --int8: report the int8 graph's speed gain (on the calibration "
                             "video) and accuracy cost (on this OTB-layout folder) against float32")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = get_config(args.model)
        if args.int8 and args.calibration is None:
            raise ValueError("--int8 needs --calibration VIDEO")
        if args.evaluate is not None and not args.int8:
            raise ValueError("--evaluate compares the --int8 graph with float32; add --int8")
        if args.int8:
            box = (_parse_box(args.calibration_box) if args.calibration_box
                   else clips.first_box(args.calibration, "--calibration"))
        weights = args.weights
        if weights is None:
            from .weights import resolve_weights

            weights = resolve_weights(config.name)
        network = build_model(config).load_weights(weights)
        out = args.out or default_export_dir(config.name)
        sidecar = export_model(config, network, out, opset=args.opset, weights=Path(weights))
        print(f"wrote {out / 'template.onnx'}, {out / 'search.onnx'} and {sidecar} "
              f"(opset {args.opset}, checked)")
        if args.int8:
            quantized = export_int8(config, out, args.calibration, box, args.calibration_frames)
            print(f"wrote {out / 'search-int8.onnx'} and {quantized}")
            if args.evaluate is not None:
                print("\n".join(evaluate_int8(config, out, args.calibration, box, args.evaluate)))
    except (TrackerError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
