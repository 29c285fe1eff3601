"""ONNX export and the onnxruntime backend: parity with torch, no torch at run time, errors."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import textwrap
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

import tracker
from tests.conftest import shared_path
from tests.parity import recipe_weights
from tracker import CheckpointError, WeightsNotFoundError, clips
from tracker.api import Tracker
from tracker.backends import onnx_backend
from tracker.backends.torch_backend import TorchRunner
from tracker.export import evaluate_int8, export_model, main as export_main
from tracker.models import build_model

FIXTURES = ("fixtures",)
# model -> (weights, steps file, sequence column, frame column, init columns, init shift to 0-based)
STEP_FIXTURES = {
    "siamfc-alexnet": (
        ("siamfc", "checkpoint.pth"), ("siamfc", "steps.csv"), "sequence", "t",
        ("init_x_1based", "init_y_1based", "init_w", "init_h"), -1.0),
    "siamrpnpp-alex": (
        ("pysot", "siamrpn_alex_dwxcorr", "checkpoint.pth"),
        ("pysot", "siamrpn_alex_dwxcorr", "steps.csv"), "sequence", "t",
        ("init_x", "init_y", "init_w", "init_h"), 0.0),
    "siamrpnpp-mobilenetv2": (
        ("pysot", "siamrpn_mobilev2_l234_dwxcorr", "checkpoint.pth"),
        ("pysot", "siamrpn_mobilev2_l234_dwxcorr", "steps.csv"), "sequence", "t",
        ("init_x", "init_y", "init_w", "init_h"), 0.0),
    "dasiamrpn-otb": (
        ("dasiamrpn", "dasiamrpn_otb"), ("dasiamrpn", "dasiamrpn_otb", "steps.csv"),
        "sequence", "frame", ("init_x", "init_y", "init_w", "init_h"), 0.0),
    "dasiamrpn-big": (
        ("dasiamrpn", "dasiamrpn_big"), ("dasiamrpn", "dasiamrpn_big", "steps.csv"),
        "sequence", "frame", ("init_x", "init_y", "init_w", "init_h"), 0.0),
}
for _version in (1, 2, 3):
    STEP_FIXTURES[f"nanotrack-v{_version}"] = (
        None, ("nanotrack", f"steps_v{_version}.csv"), "seq", "frame",
        ("init_x", "init_y", "init_w", "init_h"), 0.0)
UNTRAINED_ONLY = ("siamrpnpp-r50", "siamrpnpp-r50-otb", "dasiamrpn-vot")


@pytest.fixture(scope="session")
def export_root(tmp_path_factory):
    return tmp_path_factory.mktemp("exports")


def _network(name):
    """The torch network with the weights its fixtures were made with (untrained otherwise)."""
    torch.manual_seed(0)
    network = build_model(name)
    if name in UNTRAINED_ONLY:
        return network
    source = STEP_FIXTURES[name][0]
    if source is None:
        version = name[-1]
        return network.load_weights(shared_path("weights", "nanotrack", f"nanotrackv{version}.pth"))
    if source[0] == "dasiamrpn":
        return network.load_weights(recipe_weights(shared_path(*FIXTURES, *source)))
    return network.load_weights(shared_path(*FIXTURES, *source))


@lru_cache(maxsize=None)
def _exported(name, root):
    network = _network(name)
    folder = Path(root) / name
    export_model(tracker.get_config(name), network, folder)
    return network, folder


@lru_cache(maxsize=None)
def _frame(sequence, number):
    return cv2.imread(str(shared_path("data", "otb", sequence, "img", f"{number:04d}.jpg")))


def _step_boxes(trk, name):
    _, steps, seq_col, frame_col, init_cols, shift = STEP_FIXTURES[name]
    with open(shared_path(*FIXTURES, *steps), newline="") as handle:
        rows = list(csv.DictReader(handle))
    boxes = []
    for row in rows:
        t = int(row[frame_col])
        x, y, w, h = (float(row[c]) for c in init_cols)
        trk.init(_frame(row[seq_col], t - 1), (x + shift, y + shift, w, h))
        boxes.append(trk.update(_frame(row[seq_col], t)).box)
    return np.array(boxes)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(STEP_FIXTURES))
def test_exported_steps_match_torch(name, export_root):
    network, folder = _exported(name, str(export_root))
    config = tracker.get_config(name)
    torch_boxes = _step_boxes(Tracker(config, TorchRunner(network)), name)
    onnx_boxes = _step_boxes(tracker.build_tracker(name, backend="onnxruntime", weights=folder), name)
    assert len(torch_boxes) == 83
    np.testing.assert_allclose(onnx_boxes, torch_boxes, atol=0.05, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(STEP_FIXTURES) + list(UNTRAINED_ONLY))
def test_exported_network_outputs_match_torch(name, export_root):
    network, folder = _exported(name, str(export_root))
    runner = onnx_backend.load_exported(tracker.get_config(name), folder)
    params = tracker.get_config(name).tracking
    generator = np.random.default_rng(1)
    z = (generator.random((1, 3, params.exemplar_size, params.exemplar_size)) * 255).astype(np.float32)
    batch = getattr(params, "scale_num", 2)
    x = (generator.random((batch, 3, params.instance_size, params.instance_size)) * 255).astype(np.float32)
    expected = network.track(network.template(torch.from_numpy(z)), torch.from_numpy(x))
    actual = runner.track(runner.template(z), x)
    assert list(actual) == list(expected)
    for key, value in expected.items():
        reference = value.numpy()
        scale = np.abs(reference).max()
        assert np.abs(actual[key] - reference).max() <= 1e-4 * scale, key


@pytest.mark.parametrize("version", [1, 2, 3])
def test_published_nanotrack_graphs_match_torch(version, monkeypatch):
    monkeypatch.setenv("TRACKER_WEIGHTS", str(shared_path("weights", "nanotrack")))
    name = f"nanotrack-v{version}"
    torch_boxes = _step_boxes(tracker.build_tracker(name), name)
    onnx_boxes = _step_boxes(tracker.build_tracker(name, backend="onnxruntime"), name)
    np.testing.assert_allclose(onnx_boxes, torch_boxes, atol=0.05, rtol=0)


def test_export_cli_writes_checked_graphs_and_sidecar(tmp_path, capsys):
    out = tmp_path / "siamfc"
    weights = shared_path(*FIXTURES, "siamfc", "checkpoint.pth")
    assert export_main(["--model", "siamfc-alexnet", "--weights", str(weights), "--out", str(out)]) == 0
    assert "opset 18" in capsys.readouterr().out
    sidecar = json.loads((out / "model.json").read_text())
    assert sidecar["opset"] == 18 and sidecar["model"] == "siamfc-alexnet"
    assert sidecar["config"] == tracker.get_config("siamfc-alexnet").to_dict()
    assert sidecar["template"] == {"file": "template.onnx", "inputs": ["z"], "outputs": ["kernel_0"]}
    assert sidecar["search"]["inputs"] == ["x", "kernel_0"]
    assert sidecar["search"]["outputs"] == ["response"]
    for graph in ("template.onnx", "search.onnx"):
        model = onnx.load(str(out / graph))
        onnx.checker.check_model(model, full_check=True)
        assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {18}
    search = onnx.load(str(out / "search.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert all(d.dim_param for d in (search[0], search[2], search[3])), "batch and size are free"


def test_export_cli_errors_are_one_line(tmp_path, capsys):
    assert export_main(["--model", "nanotrack-v9", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: unknown model 'nanotrack-v9'")
    missing = tmp_path / "missing.pth"
    assert export_main(["--model", "siamfc-alexnet", "--weights", str(missing), "--out", str(tmp_path)]) == 2
    assert "checkpoint file not found" in capsys.readouterr().err
    assert export_main(["--model", "siamfc-alexnet", "--int8", "--out", str(tmp_path)]) == 2
    assert "--int8 needs --calibration" in capsys.readouterr().err
    assert export_main(["--model", "siamfc-alexnet", "--evaluate", str(tmp_path)]) == 2
    assert "--evaluate compares the --int8 graph" in capsys.readouterr().err


def test_onnx_backend_errors_name_the_problem(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_CACHE", str(tmp_path / "cache"))
    with pytest.raises(WeightsNotFoundError, match="python -m tracker.export --model siamrpnpp-alex"):
        tracker.build_tracker("siamrpnpp-alex", backend="onnxruntime")
    with pytest.raises(FileNotFoundError, match="export folder holding model.json"):
        tracker.build_tracker("siamrpnpp-alex", backend="onnxruntime", weights=tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not an export sidecar"):
        tracker.build_tracker("siamrpnpp-alex", backend="onnxruntime", weights=tmp_path)
    network = build_model("siamfc-alexnet")
    export_model(tracker.get_config("siamfc-alexnet"), network, tmp_path / "siamfc")
    with pytest.raises(CheckpointError, match="holds an export of 'siamfc-alexnet'"):
        tracker.build_tracker("siamrpnpp-alex", backend="onnxruntime", weights=tmp_path / "siamfc")
    with pytest.raises(ValueError, match="threads must be at least 1"):
        tracker.build_tracker("siamfc-alexnet", backend="onnxruntime", weights=tmp_path / "siamfc", threads=0)


_WITHOUT_TORCH = textwrap.dedent(
    """
    import sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is not installed here")

    sys.meta_path.insert(0, BlockTorch())
    import cv2, numpy as np, tracker

    frames = [cv2.imread(p) for p in sys.argv[2:]]
    for weights in (None, sys.argv[1]):
        trk = tracker.build_tracker("nanotrack-v2", backend="onnxruntime", weights=weights)
        trk.init(frames[0], (40.0, 40.0, 30.0, 60.0))
        boxes = [trk.update(f).box for f in frames[1:]]
        assert all(np.isfinite(b).all() for b in boxes)
    assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch imported"
    print("tracked without torch", len(boxes))
    """
)


def test_onnxruntime_backend_never_imports_torch(export_root, monkeypatch):
    _, folder = _exported("nanotrack-v2", str(export_root))
    frames = sorted(shared_path("data", "otb", "Crossing", "img").glob("*.jpg"))[:5]
    env = {"TRACKER_WEIGHTS": str(shared_path("weights", "nanotrack"))}
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH, str(folder), *map(str, frames)],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "tracked without torch 4" in result.stdout


@pytest.mark.slow
def test_int8_export_tracks(export_root, tmp_path):
    """Quantized search graph: calibrated on the airplane clip, still follows Crossing."""
    clip = shared_path("data", "clips", "airplane-1.mp4")
    weights = shared_path("weights", "nanotrack", "nanotrackv2.pth")
    out = tmp_path / "int8"
    assert export_main([
        "--model", "nanotrack-v2", "--weights", str(weights), "--out", str(out),
        "--int8", "--calibration", str(clip), "--calibration-frames", "40",
    ]) == 0
    sidecar = json.loads((out / "model-int8.json").read_text())
    assert sidecar["search"]["file"] == "search-int8.onnx"
    quantized = onnx.load(str(out / "search-int8.onnx"))
    assert any(node.op_type == "QuantizeLinear" for node in quantized.graph.node)
    trk = tracker.build_tracker("nanotrack-v2", backend="onnxruntime", weights=out / "model-int8.json")
    folder = shared_path("data", "otb", "Crossing")
    truth = np.loadtxt(folder / "groundtruth_rect.txt", delimiter=",") - [1, 1, 0, 0]
    paths = sorted((folder / "img").glob("*.jpg"))[:60]
    trk.init(cv2.imread(str(paths[0])), tuple(truth[0]))
    boxes = np.array([trk.update(cv2.imread(str(p))).box for p in paths[1:]])
    centre_error = np.hypot(*(boxes[:, :2] + boxes[:, 2:] / 2 - truth[1:60, :2] - truth[1:60, 2:] / 2).T)
    assert np.median(centre_error) < 10

    otb = tmp_path / "otb"
    otb.mkdir()
    (otb / "Crossing").symlink_to(folder)
    speed_line, accuracy_line = evaluate_int8(
        tracker.get_config("nanotrack-v2"), out, clip, clips.first_box(clip, "clip"), otb, frames=20)
    assert "(20 updates)" in speed_line and "speed gain" in speed_line
    auc_int8, auc_float, auc_change = (float(v) for v in re.search(
        r"success AUC ([\d.]+) vs ([\d.]+) \(([-+][\d.]+)\)", accuracy_line).groups())
    assert auc_change == pytest.approx(auc_int8 - auc_float, abs=1e-4)
    assert auc_float > 0.6 and auc_int8 > 0.6
