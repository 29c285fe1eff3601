"""``python -m tracker.export``: a model as two ONNX graphs for the onnxruntime backend.

The template graph maps exemplar crops to the kernel tensors; the search graph takes
search crops and kernel tensors and returns the head outputs. Both have a free batch
dimension, one item per crop, so that one call scores the crops of many targets (the kernel
batch equals the crop batch: a target's kernel is repeated for each of its crops). The crop
size is fixed at the one the tracking loop feeds; only a model whose search size adapts to the
target (DaSiamRPN-BIG) gets a free size. Fixed sizes export faster (symbolic shapes cost
torch's exporter most of its time) and let onnxruntime plan every kernel ahead. ``model.json``
beside them records the model config, the opset and the graph interfaces. With ``--int8`` a statically quantized search graph is
written too (``search-int8.onnx`` with its own sidecar ``model-int8.json``), calibrated on
search crops taken while tracking a video. Its speed gain and accuracy cost against the float32
graph are measured by ``python -m tracker.benchmark int8``.
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
from .backends.onnx_backend import INT8_SIDECAR, SIDECAR, SIDECAR_FORMAT, default_export_dir
from .cli_args import ensure_writable_dir, parse_box
from .config import ModelConfig
from .errors import TrackerError
from .models.network import SiameseNetwork, build_model
from .zoo import get_config, list_models

OPSET = 18
_MAX_SEARCH_SIZE = 1024
_MAX_BATCH = 4096
_EXAMPLE_BATCH = 2


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
    # A batch of two, so that the exporter records the batch as a free dimension.
    z = torch.zeros(_EXAMPLE_BATCH, 3, params.exemplar_size, params.exemplar_size)
    x = torch.zeros(_EXAMPLE_BATCH, 3, params.instance_size, params.instance_size)
    kernel = network.template(z)
    outputs = list(network.track(kernel, x))
    kernel_names = [f"kernel_{i}" for i in range(len(kernel))]
    batch = Dim("batch", min=1, max=_MAX_BATCH)
    search_axes = {0: batch}
    if getattr(params, "adaptive_instance_size", None) is not None:
        side = Dim("search_size", min=params.exemplar_size, max=_MAX_SEARCH_SIZE)
        search_axes.update({2: side, 3: side})
    search_dims = {"x": search_axes, "kernel": [{0: batch}] * len(kernel)}
    graphs = {
        "template": (_TemplateBranch(network), (z,), {"z": {0: batch}}, ["z"], kernel_names),
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
            "  python -m tracker.benchmark int8 --model nanotrack-v2 --export exports/nanotrack-v2 "
            "--calibration clip.mp4   (speed gain, accuracy cost)\n"
            "then: tracker.build_tracker(name, backend='onnxruntime', weights='exports/nanotrack-v2')"
        ),
    )
    parser.add_argument("--model", required=True, metavar="NAME", help=", ".join(list_models()))
    parser.add_argument("--weights", type=Path, help="checkpoint (default: found through the model record)")
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
                        help="frames used for calibration (default 200)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = get_config(args.model)
        if args.int8 and args.calibration is None:
            raise ValueError("--int8 needs --calibration VIDEO")
        if args.calibration_frames < 1:
            raise ValueError(f"--calibration-frames must be at least 1, got {args.calibration_frames}")
        if args.int8 and not args.calibration.is_file():
            raise FileNotFoundError(f"--calibration: no such video: {args.calibration}")
        if args.int8:
            box = (parse_box(args.calibration_box, "--calibration-box") if args.calibration_box
                   else clips.first_box(args.calibration, "--calibration"))
        weights = args.weights
        if weights is None:
            from .weights import resolve_weights

            weights = resolve_weights(config.name)
        network = build_model(config).load_weights(weights)
        out = args.out or default_export_dir(config.name)
        ensure_writable_dir(out, "--out")
        sidecar = export_model(config, network, out, opset=args.opset, weights=Path(weights))
        print(f"wrote {out / 'template.onnx'}, {out / 'search.onnx'} and {sidecar} "
              f"(opset {args.opset}, checked)")
        if args.int8:
            quantized = export_int8(config, out, args.calibration, box, args.calibration_frames)
            print(f"wrote {out / 'search-int8.onnx'} and {quantized}")
    except (TrackerError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
