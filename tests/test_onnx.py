"""ONNX export and the onnxruntime backend: parity with torch, no torch at run time, errors."""

from __future__ import annotations

import json
import os
import re

import cv2
import numpy as np
import onnx
import pytest
import torch

import tracker
from tests.conftest import run_without_torch, shared_path
from tests.steps import (
    STEPS, WEIGHTS, export_rows, exported, network_for, reference_config, step_frame, step_results,
    step_rows, torch_step_results,
)
from tracker import CheckpointError, WeightsNotFoundError, clips
from tracker.backends import onnx_backend
from tracker.benchmark.int8 import compare_int8
from tracker.export import export_model, main as export_main
from tracker.models import build_model
from tracker.weights import resolve_weights

FIXTURES = ("fixtures",)


#: Recorded network inputs (``z``, ``x``) under ``fixtures/`` for the models that have them.
NET_CROPS = {
    "siamfc-alexnet": ("siamfc", "net.npz"),
    "siamrpnpp-alex": ("pysot", "siamrpn_alex_dwxcorr", "net.npz"),
    "siamrpnpp-mobilenetv2": ("pysot", "siamrpn_mobilev2_l234_dwxcorr", "net.npz"),
    "dasiamrpn-otb": ("dasiamrpn", "dasiamrpn_otb", "net.npz"),
    "dasiamrpn-big": ("dasiamrpn", "dasiamrpn_big", "net.npz"),
    **{f"nanotrack-v{v}": ("nanotrack", f"net_v{v}.npz") for v in (1, 2, 3)},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(STEPS))
def test_exported_steps_match_torch(name):
    folder = exported(name)
    torch_boxes = torch_step_results(name).boxes
    assert len(torch_boxes) == (6 if STEPS[name].one_per_sequence else 83)
    rows = export_rows(name)
    assert len(rows) == (12 if STEPS[name].export_ends_only else len(torch_boxes))
    trk = tracker.build_tracker(reference_config(name), backend="onnxruntime", weights=folder)
    onnx = step_results(trk, name, rows)
    if STEPS[name].export_ends_only:  # the rows still cover every search size the loop picks
        assert set(onnx.search_sizes) == set(torch_step_results(name).search_sizes)
    np.testing.assert_allclose(onnx.boxes, torch_boxes[rows], atol=0.05, rtol=0)


def _network_inputs(name):
    """(z, x) pairs: the recorded crops where the model has them, else seeded random crops."""
    if name in NET_CROPS:
        crops = np.load(shared_path(*FIXTURES, *NET_CROPS[name]))
        # siamfc records its three scales per pair: (pair, scale, C, H, W)
        return [(z[None], x if x.ndim == 4 else x[None]) for z, x in zip(crops["z"], crops["x"])]
    params = tracker.get_config(name).tracking
    generator = np.random.default_rng(1)
    z = (generator.random((1, 3, params.exemplar_size, params.exemplar_size)) * 255).astype(np.float32)
    batch = getattr(params, "scale_num", 1)  # the batch the loop feeds: the graph is fixed to it
    x = (generator.random((batch, 3, params.instance_size, params.instance_size)) * 255).astype(np.float32)
    return [(z, x)]


def assert_outputs_close(actual, expected, what):
    """Elementwise within 1e-4 relative; outputs with both signs (logits, offsets) also get
    1e-4 x their std absolute, for the values near zero a relative bound cannot hold. An
    output of one sign (NanoTrack's exp-ed ``loc``, up to 1e6) gets no absolute slack, so
    its small values are held to 1e-4 too."""
    atol = 1e-4 * float(expected.std()) if expected.min() < 0 < expected.max() else 0.0
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=atol, err_msg=what)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(STEPS))
def test_exported_network_outputs_match_torch(name):
    network, folder = network_for(name), exported(name)
    runner = onnx_backend.load_exported(tracker.get_config(name), folder)
    inputs = _network_inputs(name)
    assert len(inputs) == (6 if name in NET_CROPS else 1)
    for pair, (z, x) in enumerate(inputs):
        with torch.no_grad():
            expected = network.track(network.template(torch.from_numpy(z)), torch.from_numpy(x))
        actual = runner.track(runner.template(z), x)
        assert list(actual) == list(expected)
        for key, value in expected.items():
            assert_outputs_close(actual[key], value.numpy(), f"{name} {key}, pair {pair}")


@pytest.mark.parametrize("version", [1, 2, 3])
def test_published_nanotrack_graphs_match_torch(version, monkeypatch):
    monkeypatch.setenv("TRACKER_WEIGHTS", str(shared_path("weights", "nanotrack")))
    name = f"nanotrack-v{version}"
    torch_boxes = step_results(tracker.build_tracker(name), name).boxes
    onnx_boxes = step_results(tracker.build_tracker(name, backend="onnxruntime"), name).boxes
    np.testing.assert_allclose(onnx_boxes, torch_boxes, atol=0.05, rtol=0)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_joined_published_graphs_give_the_reference_onnx_outputs(version, monkeypatch):
    """Backbone and head joined into one search graph: the outputs the reference recorded
    from the two published graphs run one after the other (``*_onnx`` in net_v*.npz)."""
    monkeypatch.setenv("TRACKER_WEIGHTS", str(shared_path("weights", "nanotrack")))
    runner = onnx_backend.load_runner(tracker.get_config(f"nanotrack-v{version}"))
    search = onnx.load_from_string(onnx_backend.search_graph_of_pair(
        *(onnx_backend.load_graph(resolve_weights(f"nanotrack-v{version}", part))
          for part in ("onnx_backbone", "onnx_head"))))
    assert [i.name for i in search.graph.input] == ["x", "kernel_0"]
    assert [o.name for o in search.graph.output] == ["cls", "loc"]
    recorded = np.load(shared_path(*FIXTURES, *NET_CROPS[f"nanotrack-v{version}"]))
    for pair, (z, x) in enumerate(zip(recorded["z"], recorded["x"])):
        (kernel,) = runner.template(z[None])
        assert_outputs_close(kernel[0], recorded["zf_onnx"][pair], f"zf, pair {pair}")
        outputs = runner.track((kernel,), x[None])
        for key in ("cls", "loc"):
            assert_outputs_close(outputs[key][0], recorded[f"{key}_onnx"][pair], f"{key}, pair {pair}")


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
    assert [d.dim_param or d.dim_value for d in search] == ["batch", 3, 255, 255], \
        "a free batch (SiamFC's three scales per target), a fixed crop size"


def test_export_cli_errors_are_one_line(tmp_path, capsys):
    assert export_main(["--model", "nanotrack-v9", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: unknown model 'nanotrack-v9'")
    missing = tmp_path / "missing.pth"
    assert export_main(["--model", "siamfc-alexnet", "--weights", str(missing), "--out", str(tmp_path)]) == 2
    assert "checkpoint file not found" in capsys.readouterr().err
    assert export_main(["--model", "siamfc-alexnet", "--int8", "--out", str(tmp_path)]) == 2
    assert "--int8 needs --calibration" in capsys.readouterr().err
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    weights = shared_path("weights", "nanotrack", "nanotrackv2.pth")
    for out in (blocker, blocker / "under"):
        assert export_main(["--model", "nanotrack-v2", "--weights", str(weights), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --out:") and str(out) in err and err.count("\n") == 1, err
    int8 = ["--model", "siamfc-alexnet", "--out", str(tmp_path), "--int8"]
    assert export_main([*int8, "--calibration", str(tmp_path / "absent.mp4")]) == 2
    assert "--calibration: no such video" in capsys.readouterr().err
    clip = shared_path("data", "clips", "airplane-1.mp4")
    assert export_main([*int8, "--calibration", str(clip), "--calibration-frames", "0"]) == 2
    assert "--calibration-frames must be at least 1, got 0" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.onnx")), "errors are found before anything is exported"


def test_default_calibration_box_is_the_clips_first_annotation_made_0_based(tmp_path):
    clip = shared_path("data", "clips", "airplane-1.mp4")
    assert clips.first_box(clip, "--calibration") == (366.0, 100.0, 41.0, 16.0)
    with pytest.raises(FileNotFoundError, match=r"--calibration: expected the first box in .*x\.txt"):
        clips.first_box(tmp_path / "x.mp4", "--calibration")


@pytest.mark.slow
def test_export_into_the_user_cache_serves_weights_none(tmp_path, monkeypatch, capsys):
    """Without --out a non-NanoTrack export lands in the cache, where weights=None finds it."""
    monkeypatch.setenv("TRACKER_CACHE", str(tmp_path / "cache"))
    checkpoint = shared_path(*WEIGHTS["siamrpnpp-alex"])
    assert export_main(["--model", "siamrpnpp-alex", "--weights", str(checkpoint)]) == 0
    folder = tmp_path / "cache" / "onnx" / "siamrpnpp-alex"
    assert f"{folder / 'search.onnx'}" in capsys.readouterr().out
    assert json.loads((folder / "model.json").read_text())["weights"]["file"] == "checkpoint.pth"
    cached = tracker.build_tracker("siamrpnpp-alex", backend="onnxruntime")
    reference = tracker.build_tracker("siamrpnpp-alex", checkpoint)
    row = step_rows("siamrpnpp-alex")[0]  # Couple t=11: a clear winner (pscore margin 0.02)
    box = tuple(float(row[c]) for c in STEPS["siamrpnpp-alex"].init_columns)
    boxes = []
    for trk in (cached, reference):
        trk.init(step_frame("Couple", 10), box)
        boxes.append(trk.update(step_frame("Couple", 11)).box)
    np.testing.assert_allclose(boxes[0], boxes[1], atol=0.05, rtol=0)
    # pysot returns its boxes half a pixel up-left of its input convention (fixtures README 4.3)
    expected = [float(row[c]) for c in ("out_x", "out_y", "out_w", "out_h")]
    np.testing.assert_allclose(boxes[1], np.add(expected, [0.5, 0.5, 0, 0]), atol=1e-3)


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
    with pytest.raises(ValueError, match="threads must be a whole number of at least 1"):
        tracker.build_tracker("siamfc-alexnet", backend="onnxruntime", weights=tmp_path / "siamfc", threads=0)


_WITHOUT_TORCH = """
import cv2, numpy as np, tracker

frames = [cv2.imread(p) for p in sys.argv[2:]]
for weights in (None, sys.argv[1]):
    trk = tracker.build_tracker("nanotrack-v2", backend="onnxruntime", weights=weights)
    trk.init(frames[0], (40.0, 40.0, 30.0, 60.0))
    boxes = [trk.update(f).box for f in frames[1:]]
    assert all(np.isfinite(b).all() for b in boxes)
print("tracked without torch", len(boxes))
"""


def test_onnxruntime_backend_never_imports_torch(monkeypatch):
    folder = exported("nanotrack-v2")
    frames = sorted(shared_path("data", "otb", "Crossing", "img").glob("*.jpg"))[:5]
    env = {"TRACKER_WEIGHTS": str(shared_path("weights", "nanotrack"))}
    result = run_without_torch(_WITHOUT_TORCH, str(folder), *map(str, frames), env=env)
    assert result.returncode == 0, result.stderr
    assert "tracked without torch 4" in result.stdout


_INT8_SPEED = re.compile(
    r"int8 vs float32 on airplane-1.mp4 \((\d+) updates, (\d+) thread\(s\)\): median ([\d.]+) "
    r"vs ([\d.]+) ms, ([\d.]+) vs ([\d.]+) FPS, speed gain ([\d.]+)x")


@pytest.mark.slow
def test_int8_export_tracks_and_reports_its_speed_gain(tmp_path, capsys):
    """Quantized search graph: written by the export, calibrated on the airplane clip; the
    benchmark's int8 command times it against float32 on the same frames in the same run; it
    still follows Crossing; compare_int8 with an OTB folder adds the accuracy cost."""
    from tracker.benchmark.__main__ import main as benchmark_main

    clip = shared_path("data", "clips", "airplane-1.mp4")
    weights = shared_path("weights", "nanotrack", "nanotrackv2.pth")
    out = tmp_path / "int8"
    argv = ["--model", "nanotrack-v2", "--weights", str(weights), "--out", str(out),
            "--int8", "--calibration", str(clip), "--calibration-frames", "40"]
    assert export_main(argv) == 0
    capsys.readouterr()
    assert benchmark_main(["int8", "--model", "nanotrack-v2", "--export", str(out),
                           "--calibration", str(clip), "--frames", "40",
                           "--markdown", str(tmp_path / "int8.md")]) == 0
    printed = capsys.readouterr().out
    updates, threads, _, _, fps_int8, fps_float, gain = _INT8_SPEED.search(printed).groups()
    assert (int(updates), int(threads)) == (40, os.cpu_count())
    assert float(gain) == pytest.approx(float(fps_int8) / float(fps_float), abs=0.006)
    assert "success AUC" not in printed, "accuracy only with --evaluate"
    table = (tmp_path / "int8.md").read_text()
    assert "| nanotrack-v2 | int8 | " in table and f" | {gain}x | - | - |" in table
    assert "python -m tracker.benchmark int8 --model nanotrack-v2" in table
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
    comparison = compare_int8(tracker.get_config("nanotrack-v2"), out, clip,
                              clips.first_box(clip, "clip"), 20, otb)
    speed_line, accuracy_line = comparison.lines()
    assert _INT8_SPEED.search(speed_line).group(1) == "20"
    auc_int8, auc_float, auc_change = (float(v) for v in re.search(
        r"success AUC ([\d.]+) vs ([\d.]+) \(([-+][\d.]+)\)", accuracy_line).groups())
    assert (auc_int8, auc_float) == pytest.approx(
        (comparison.accuracy["int8"][0], comparison.accuracy["float32"][0]), abs=5e-5)
    assert auc_change == pytest.approx(auc_int8 - auc_float, abs=1e-4)
    assert auc_float > 0.6 and auc_int8 > 0.6
    table = comparison.markdown("nanotrack-v2", "cmd").splitlines()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table[2:4]]
    assert [row[1] for row in rows] == ["float32", "int8"]
    assert rows[1][4] == f"{comparison.speed_gain:.2f}x" and rows[0][4] == "1.00x"
    assert rows[1][5:] == [f"{v:.4f}" for v in comparison.accuracy["int8"]]
