"""``python -m tracker.export``: a model as two ONNX graphs for the onnxruntime backend.

The template graph maps the exemplar crop to the kernel tensors; the search graph takes the
search crops and the kernel tensors and returns the head outputs, so one search graph serves
every target. Its input has the shape the tracking loop feeds (one crop, SiamFC's scale
pyramid in one batch); only a model whose search size adapts to the target (DaSiamRPN-BIG)
gets a free size. Fixed shapes export about five times faster (symbolic shapes cost torch's
exporter most of its time) and let onnxruntime plan every kernel ahead. ``model.json`` beside them records the model config,
the opset and the graph interfaces. With ``--int8`` a statically quantized search graph is
written too (``search-int8.onnx`` with its own sidecar ``model-int8.json``), calibrated on
search crops taken while tracking a video, and its speed gain over the float32 search graph is
reported (both timed in turns on the calibration frames); ``--evaluate DIR`` adds the accuracy
cost on an OTB-layout folder.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import itertools
import json
import logging
import os
import shlex
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from . import clips
from .backends.onnx_backend import SIDECAR, SIDECAR_FORMAT, default_export_dir
from .config import ModelConfig
from .errors import TrackerError
from .models.network import SiameseNetwork, build_model
from .zoo import get_config, list_models

if TYPE_CHECKING:
    from .benchmark.speed import Timing

OPSET = 18
INT8_SIDECAR = "model-int8.json"
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
    search_dims = None
    if getattr(params, "adaptive_instance_size", None) is not None:
        side = Dim("search_size", min=params.exemplar_size, max=_MAX_SEARCH_SIZE)
        search_dims = {"x": {2: side, 3: side}, "kernel": [None] * len(kernel)}
    graphs = {
        "template": (_TemplateBranch(network), (z,), None, ["z"], kernel_names),
        "search": (
            _SearchBranch(network), (x, list(kernel)), search_dims, ["x"] + kernel_names, outputs,
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


#: The two search graphs an int8 comparison runs, by label: their sidecars in the export folder.
INT8_VARIANTS = (("float32", SIDECAR), ("int8", INT8_SIDECAR))


@dataclass
class Int8Comparison:
    """float32 vs int8 search graph: ``update`` timings on a video, and optionally accuracy
    (success AUC, precision@20px per variant) on an OTB-layout folder."""

    video: Path
    threads: int
    timings: Dict[str, "Timing"]
    otb_root: Optional[Path] = None
    accuracy: Dict[str, Tuple[float, float]] = field(default_factory=dict)

    @property
    def speed_gain(self) -> float:
        return self.timings["int8"].fps / self.timings["float32"].fps

    def lines(self) -> List[str]:
        """The report as printed by ``python -m tracker.export --int8``."""
        fast, quant = self.timings["float32"], self.timings["int8"]
        lines = [
            f"int8 vs float32 on {self.video.name} ({fast.frames} updates, {self.threads} "
            f"thread(s)): median {quant.median_ms:.2f} vs {fast.median_ms:.2f} ms, "
            f"{quant.fps:.1f} vs {fast.fps:.1f} FPS, speed gain {self.speed_gain:.2f}x"
        ]
        if self.accuracy:
            (auc_f, prec_f), (auc_q, prec_q) = self.accuracy["float32"], self.accuracy["int8"]
            lines.append(
                f"int8 vs float32 on {self.otb_root}: success AUC {auc_q:.4f} vs {auc_f:.4f} "
                f"({auc_q - auc_f:+.4f}), precision@20px {prec_q:.4f} vs {prec_f:.4f} "
                f"({prec_q - prec_f:+.4f})"
            )
        return lines

    def markdown(self, model: str, command: str) -> str:
        """A Markdown table of both variants, with the command and machine under it."""
        from .benchmark import markdown

        header = ["model", "search graph", "median ms", "FPS", "speed gain", "success AUC",
                  "precision@20px"]
        rows = []
        for label, _ in INT8_VARIANTS:
            timing = self.timings[label]
            auc, precision = (
                (f"{v:.4f}" for v in self.accuracy[label]) if self.accuracy else ("-", "-")
            )
            gain = f"{timing.fps / self.timings['float32'].fps:.2f}x"
            rows.append([model, label, f"{timing.median_ms:.2f}", f"{timing.fps:.1f}", gain,
                         auc, precision])
        accuracy = (f"; accuracy on the {self.otb_root.name} folder through the got10k toolkit"
                    if self.accuracy else "")
        return "\n".join([
            *markdown.table(header, rows),
            "",
            f"Generated by `{command}` on {markdown.machine()}: onnxruntime `update` over "
            f"{self.timings['float32'].frames} frames of {self.video.name} on {self.threads} "
            f"thread(s), both search graphs timed in turns{accuracy}.",
            "",
        ])


def compare_int8(
    config: ModelConfig, out_dir: Path, video: Path, box: Sequence[float], frames: int,
    otb_root: Optional[Path] = None,
) -> Int8Comparison:
    """Time the float32 and int8 exports in ``out_dir`` on ``frames`` frames of ``video``
    (after a warm-up, in turns, as the speed benchmark does) and, with ``otb_root``, measure
    their accuracy there through ``python -m tracker.benchmark accuracy``."""
    from .api import build_tracker
    from .benchmark.speed import WARMUP_FRAMES, summarize, time_interleaved

    threads = os.cpu_count() or 1
    clip = list(itertools.islice(clips.frames(video, "--calibration"), frames + WARMUP_FRAMES + 1))
    if len(clip) < WARMUP_FRAMES + 2:
        raise ValueError(f"--calibration: {video} has too few frames to time ({len(clip)})")
    trackers = [build_tracker(config.name, out_dir / sidecar, backend="onnxruntime", threads=threads)
                for _, sidecar in INT8_VARIANTS]
    for trk in trackers:
        trk.init(clip[0], tuple(box))
    seconds = time_interleaved([trk.update for trk in trackers], clip[1:], WARMUP_FRAMES)
    comparison = Int8Comparison(
        video=Path(video), threads=threads,
        timings={label: summarize(label, "onnxruntime", threads, times)
                 for (label, _), times in zip(INT8_VARIANTS, seconds)},
    )
    if otb_root is not None:
        comparison.otb_root = Path(otb_root)
        comparison.accuracy = {label: _otb_accuracy(config, out_dir / sidecar, Path(otb_root))
                               for label, sidecar in INT8_VARIANTS}
    return comparison


def _otb_accuracy(config: ModelConfig, sidecar: Path, otb_root: Path) -> Tuple[float, float]:
    """Success AUC and precision@20px of one export on an OTB-layout folder (the toolkit's)."""
    from .benchmark.__main__ import main as benchmark
    from .benchmark.accuracy import tracker_name

    with tempfile.TemporaryDirectory(prefix="tracker-int8-") as scratch:
        code = benchmark([
            "accuracy", "--dataset", "otb", "--root", str(otb_root), "--model", config.name,
            "--backend", "onnxruntime", "--weights", str(sidecar),
            "--results", str(Path(scratch) / "results"), "--reports", str(Path(scratch) / "reports"),
        ])
        if code != 0:
            raise TrackerError(f"--evaluate: the accuracy benchmark failed on {otb_root}")
        name = tracker_name(config.name, "onnxruntime", weights=sidecar)
        report = Path(scratch) / "reports" / "OTB" / name / "performance.json"
        overall = json.loads(report.read_text())[name]["overall"]
    return overall["success_score"], overall["precision_score"]


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
    parser.add_argument("--calibration-box", metavar="X,Y,W,H",
                        help="the target in the video's first frame, 0-based: x, y, w, h in "
                             "pixels with (0,0) the top-left corner of the top-left pixel "
                             "(default: the first line of the .txt beside the video, converted "
                             "from its 1-based numbers by subtracting 1 from x and y)")
    parser.add_argument("--calibration-frames", type=int, default=200,
                        help="frames used for calibration, then timed for the speed gain "
                             "(default 200)")
    parser.add_argument("--evaluate", type=Path, metavar="OTB_DIR",
                        help="with --int8: also report the int8 graph's accuracy cost against "
                             "float32 on this OTB-layout folder (the speed gain is always reported)")
    parser.add_argument("--markdown", type=Path, metavar="FILE",
                        help="with --int8: also write the float32 vs int8 comparison as a "
                             "Markdown table, with the command that made it")
    return parser


def _command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run: every option with the value in effect (``--out``
    and ``--weights`` only when given, as their defaults depend on the machine)."""
    parts = ["python", "-m", "tracker.export", "--model", args.model]
    for option, value in (("--weights", args.weights), ("--out", args.out)):
        if value is not None:
            parts += [option, str(value)]
    parts += ["--opset", str(args.opset)]
    if args.int8:
        parts += ["--int8", "--calibration", str(args.calibration)]
        if args.calibration_box:
            parts += ["--calibration-box", args.calibration_box]
        parts += ["--calibration-frames", str(args.calibration_frames)]
    for option, value in (("--evaluate", args.evaluate), ("--markdown", args.markdown)):
        if value is not None:
            parts += [option, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = get_config(args.model)
        if args.int8 and args.calibration is None:
            raise ValueError("--int8 needs --calibration VIDEO")
        for option, value in (("--evaluate", args.evaluate), ("--markdown", args.markdown)):
            if value is not None and not args.int8:
                raise ValueError(f"{option} needs --int8 (it reports the int8 graph against float32)")
        if args.calibration_frames < 1:
            raise ValueError(f"--calibration-frames must be at least 1, got {args.calibration_frames}")
        if args.int8 and not args.calibration.is_file():
            raise FileNotFoundError(f"--calibration: no such video: {args.calibration}")
        if args.evaluate is not None and not args.evaluate.is_dir():
            raise FileNotFoundError(f"--evaluate: no such folder: {args.evaluate}")
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
            comparison = compare_int8(config, out, args.calibration, box,
                                      args.calibration_frames, args.evaluate)
            print("\n".join(comparison.lines()))
            if args.markdown is not None:
                args.markdown.parent.mkdir(parents=True, exist_ok=True)
                args.markdown.write_text(comparison.markdown(config.name, _command_line(args)))
                print(f"markdown: {args.markdown}")
    except (TrackerError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
