"""``python -m tracker.benchmark speed``: report contents, FLOP count, clip choice, errors.

Timings themselves are not asserted (they depend on the machine); what is checked is that
every reported number is computed from what it claims to be computed from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import math
import shlex
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from tests.boxes import ious
from tests.conftest import run_without_torch, shared_path
from tracker.benchmark import flops, speed
from tools import readme_results as readme
from tracker.benchmark.__main__ import build_parser, main
from tracker.models import build_model


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _hand_counted_flops(name):
    """2 x multiply-adds of every convolution, linear layer and pointwise correlation."""
    network = build_model(name)
    total = 0

    def conv_hook(module, inputs, output):
        nonlocal total
        kh, kw = module.kernel_size
        per_output = module.in_channels // module.groups * kh * kw
        total += 2 * output.numel() * per_output

    def linear_hook(module, inputs, output):
        nonlocal total
        total += 2 * output.numel() * module.in_features

    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(conv_hook)
        elif isinstance(module, torch.nn.Linear):
            module.register_forward_hook(linear_hook)
    kernel = network.template(torch.zeros(1, 3, 127, 127))
    search_features = network.backbone(torch.zeros(1, 3, 255, 255))
    total = 0
    network.track(kernel, torch.zeros(1, 3, 255, 255))
    channels, height, width = search_features.shape[1:]
    template_positions = 8 * 8
    correlations = 2 if name != "nanotrack-v1" else 1
    total += correlations * 2 * channels * template_positions * height * width
    return total


@pytest.fixture
def small_matmul(monkeypatch):
    """The machine's limit from a small product: these tests check arithmetic, not the limit."""
    monkeypatch.setattr(speed, "matmul_gflops",
                        functools.partial(speed.matmul_gflops, size=256, repeats=2))


def _recording_build_tracker(monkeypatch):
    """Wrap the builder the speed command uses so every timed ``init``/``update`` is recorded."""
    calls = []
    build = speed.api.build_tracker

    def recording(*args, **kwargs):
        trk = build(*args, **kwargs)
        init, update = trk.init, trk.update
        trk.init = lambda frame, box: (calls.append(("init", tuple(box))), init(frame, box))[1]
        trk.update = lambda frame: calls.append(("update", update(frame).box)) or calls[-1][1]
        return trk

    monkeypatch.setattr(speed.api, "build_tracker", recording)
    return calls


def test_json_report_holds_every_number(monkeypatch, small_matmul):
    monkeypatch.setenv("TRACKER_WEIGHTS", str(shared_path("weights", "nanotrack")))
    clip = shared_path("data", "clips", "airplane-1.mp4")
    calls = _recording_build_tracker(monkeypatch)
    code, out, err = _cli("speed", "--model", "nanotrack-v2", "--frames", "15", "--threads", "1",
                          "--json", "--clip", str(clip))
    assert code == 0, err
    # The timed tracker really tracked: started on the clip's first box (1-based file, 0-based
    # box), one update per frame, and still on the airplane at the last timed frame.
    truth = np.loadtxt(clip.with_suffix(".txt"), delimiter=",")
    assert calls[0] == ("init", tuple(truth[0] - [1, 1, 0, 0]))
    boxes = np.array([box for kind, box in calls[1:] if kind == "update"])
    assert len(calls) == 1 + len(boxes) == 1 + speed.WARMUP_FRAMES + 15
    overlaps = ious(boxes, truth[1:len(boxes) + 1] - [1, 1, 0, 0])
    assert overlaps.min() > 0.6, overlaps  # measured: 0.70 to 0.90 over these 25 frames
    report = json.loads(out)
    assert report["clip"].endswith("airplane-1.mp4") and report["frames"] == 15
    assert report["machine_gflops"]["1"] == max(report["matmul_gflops"]["1"].values()) > 1
    ours, baseline = report["timings"]
    assert baseline["backend"] == "opencv" and "TrackerNano" in baseline["tracker"]
    assert ours["tracker"] == "nanotrack-v2" and ours["frames"] == 15
    assert ours["median_ms"] <= ours["p95_ms"]
    assert ours["gflops_per_frame"] * 1e9 == pytest.approx(_hand_counted_flops("nanotrack-v2"))
    assert ours["achieved_gflops"] == pytest.approx(ours["gflops_per_frame"] * ours["fps"])
    assert ours["limit_ratio"] == pytest.approx(ours["achieved_gflops"] / report["machine_gflops"]["1"])
    assert ours["vs_baseline"] == pytest.approx(ours["fps"] / baseline["fps"])


def test_trackers_take_turns_over_every_frame_in_order():
    calls = []
    updates = [lambda frame, who=who: calls.append((who, frame)) for who in "ab"]
    frames = list(range(3 + 12))
    seconds = speed.time_interleaved(updates, frames, warmup=3, rounds=4)
    assert [len(times) for times in seconds] == [12, 12]
    for who in "ab":
        assert [frame for caller, frame in calls if caller == who] == frames
    timed = [caller for caller, frame in calls if frame >= 3]
    assert "".join(timed) == "aaabbb" * 4


def test_machine_limit_uses_libraries_whose_thread_count_is_set():
    rates = speed.matmul_gflops(1, size=256, repeats=2)
    assert set(rates) == {"onnxruntime", "torch"}
    assert all(rate > 1 for rate in rates.values())


def test_text_report_and_untrained_models(monkeypatch, tmp_path, small_matmul):
    monkeypatch.setenv("TRACKER_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TRACKER_CACHE", str(tmp_path))
    code, out, err = _cli("speed", "--model", "siamfc-alexnet", "--frames", "2", "--threads", "1",
                          "--untrained", "--no-baseline")
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("siamfc-alexnet (untrained)"))
    assert row.split()[2:4] == ["torch", "1"]
    assert "GFLOP/s on 1 thread(s)" in out
    code, _, err = _cli("speed", "--model", "siamfc-alexnet", "--frames", "2", "--no-baseline")
    assert code == 2 and "--untrained" in err


def test_generated_clip_without_a_clip():
    """The generated clip's box is exactly its moving target: the patch it encloses on the first
    frame reappears pixel for pixel elsewhere in the last one, a patch one pixel off does not."""
    clip, frames, box = speed.load_clip(None, 12)
    assert clip.startswith("generated") and len(frames) == 12
    assert frames[0].shape == (360, 640, 3) and frames[0].dtype == np.uint8
    x, y, w, h = (int(v) for v in box)
    assert box == (x, y, w, h)

    def best_match(patch):
        scores = cv2.matchTemplate(frames[-1], patch, cv2.TM_SQDIFF)
        low, _, where, _ = cv2.minMaxLoc(scores)
        return low, where

    low, where = best_match(frames[0][y:y + h, x:x + w])
    assert low < 1 and where != (x, y)  # 0 up to float32 rounding in matchTemplate
    assert best_match(frames[0][y:y + h, x + 1:x + w + 1])[0] > 1000
    assert best_match(frames[0][y - 1:y + h - 1, x:x + w])[0] > 1000


def test_all_frames_times_the_whole_clip(tmp_path, monkeypatch, small_matmul):
    """``--frames all`` times every frame after the warm-up and the init frame."""
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 360))
    frames, box = speed.generated_clip(23)
    for frame in frames:
        writer.write(frame)
    writer.release()
    x, y, w, h = box
    path.with_suffix(".txt").write_text(f"{x + 1},{y + 1},{w},{h}\n")
    monkeypatch.setenv("TRACKER_WEIGHTS", str(tmp_path))
    # A default shorter than the clip, so that 'all' and the default give different counts.
    monkeypatch.setattr(speed, "DEFAULT_FRAMES", 4)
    counts = {}
    for frames in (["--frames", "all"], []):
        code, out, err = _cli("speed", "--model", "nanotrack-v1", "--untrained", "--clip", path,
                              *frames, "--threads", "1", "--no-baseline", "--json")
        assert code == 0, err
        report = json.loads(out)
        assert [t["frames"] for t in report["timings"]] == [report["frames"]]
        counts[" ".join(frames) or "default"] = report["frames"]
    assert counts == {"--frames all": 23 - speed.WARMUP_FRAMES - 1, "default": 4}


def test_measure_speed_returns_the_report_without_printing(monkeypatch, small_matmul, capsys):
    """The library call behind ``speed``: a row per model, backend and thread count plus the
    baseline, every one timed on the asked frames; nothing printed, the report immutable."""
    monkeypatch.setenv("TRACKER_WEIGHTS", str(shared_path("weights", "nanotrack")))
    clip = shared_path("data", "clips", "airplane-1.mp4")
    report = speed.measure_speed(["nanotrack-v1", "nanotrack-v2"],
                                 backends=["torch", "onnxruntime"], threads=[1], frames=4,
                                 clip=clip, untrained=True)
    assert capsys.readouterr().out == ""
    baseline = ("cv2.TrackerNano (nanotrack-v2 ONNX)", "opencv")
    assert [(t.tracker, t.backend) for t in report.timings] == [
        (m, b) for b in ("torch", "onnxruntime") for m in ("nanotrack-v1", "nanotrack-v2")
    ] + [baseline]
    assert report.clip == str(clip) and report.frames == 4
    assert [t.frames for t in report.timings] == [4] * 5 and {t.threads for t in report.timings} == {1}
    assert all(math.isfinite(t.fps) and t.fps > 0 for t in report.timings)
    assert all(t.vs_baseline == pytest.approx(t.fps / report.timings[-1].fps) for t in report.timings)
    assert set(report.machine_gflops) == set(report.matmul_gflops) == {1}
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.frames = 5
    text = speed.format_markdown(report, "python -m tracker.benchmark speed --frames 4")
    assert "Generated by `python -m tracker.benchmark speed --frames 4`" in text
    rows = [line for line in text.splitlines() if line.startswith("|")][2:]
    assert [row.split("|")[1].strip() for row in rows] == [t.tracker for t in report.timings]


@pytest.mark.parametrize(
    "options,message",
    [
        ({"backends": ["tensorrt"]}, "backends must be among torch, onnxruntime, got 'tensorrt'"),
        ({"threads": [1, 0]}, "threads: expected a positive integer, got 0"),
        ({"frames": 0}, "frames: expected a positive integer, got 0"),
        ({"weights": Path("w.pt"), "models": ["nanotrack-v1", "nanotrack-v2"]},
         "weights: expected exactly one model, got 2 models"),
        ({"models": []}, "models: expected at least one model"),
    ],
)
def test_measure_speed_names_the_argument_it_refuses(options, message):
    models = options.pop("models", ["nanotrack-v2"])
    with pytest.raises(ValueError) as error:
        speed.measure_speed(models, **options)
    assert str(error.value) == message


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "nanotrack-v9"], "unknown model 'nanotrack-v9'"),
        (["--threads", "1,0"], "--threads: expected a positive integer, got '0'"),
        (["--threads", "two"], "--threads: expected a positive integer, got 'two'"),
        (["--threads", ","], "--threads: expected comma-separated positive integers, got ','"),
        (["--backend", "tensorrt"], "--backend must be among torch, onnxruntime"),
        (["--frames", "0"], "--frames: expected a positive integer or 'all', got '0'"),
        (["--frames", "ten"], "--frames: expected a positive integer or 'all', got 'ten'"),
        (["--clip", "missing.mp4"], "--clip: no such video"),
        (["--model", "nanotrack-v1", "--model", "nanotrack-v2", "--weights", "w.pt"],
         "--weights applies to exactly one --model"),
    ],
)
def test_errors_are_one_line(args, message):
    code, _, err = _cli("speed", *args)
    assert code == 2
    assert err.strip().splitlines() == [f"error: {err.strip()[7:]}"]
    assert message in err


def _fake_steps(monkeypatch):
    """Replace the benchmark runs of ``readme_results`` by stubs returning one-line tables;
    returns the calls (name and arguments)."""
    calls = []

    def fake_accuracy(otb, models, reports):
        calls.append({"step": "accuracy", "otb": otb, "models": list(models)})
        return "| accuracy table |\n"

    def fake_speed(clip, models, frames, baseline, reports, table):
        calls.append({"step": "speed", "clip": clip, "models": list(models), "frames": frames,
                      "baseline": baseline})
        return "| speed table |\n"

    def fake_int8(otb, clip, export_dir):
        calls.append({"step": "int8", "otb": otb, "clip": clip})
        return "| export table |\n"

    monkeypatch.setattr(readme, "accuracy_markdown", fake_accuracy)
    monkeypatch.setattr(readme, "speed_markdown", fake_speed)
    monkeypatch.setattr(readme, "int8_markdown", fake_int8)
    return readme.main, calls


@pytest.fixture
def readme_page(tmp_path):
    page = tmp_path / "README.md"
    page.write_text(f"intro\n{readme.START}\nold numbers\n{readme.END}\noutro\n")
    return page


def test_readme_section_is_replaced_between_its_markers(tmp_path, monkeypatch, readme_page, capsys):
    """``readme`` runs accuracy, speed and the int8 export with --markdown and splices their
    tables in."""
    monkeypatch.setenv("TRACKER_WEIGHTS", str(shared_path("weights", "nanotrack")))
    real_main, calls = _fake_steps(monkeypatch)
    code = real_main(["--readme", str(readme_page), "--reports", str(tmp_path / "r")])
    assert code == 0
    text = readme_page.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert "old numbers" not in text
    assert "| accuracy table |" in text and "| speed table |" in text
    assert "| export table |" in text
    accuracy, realtime, large, int8 = calls
    assert [c["step"] for c in calls] == ["accuracy", "speed", "speed", "int8"]
    nanotracks = ["nanotrack-v1", "nanotrack-v2", "nanotrack-v3"]
    assert accuracy["models"] == nanotracks
    # The real-time models and cv2.TrackerNano apart from the large ones, which slow them.
    assert realtime["models"] == nanotracks and realtime["baseline"]
    assert len(large["models"]) == 8 and not set(large["models"]) & set(nanotracks)
    assert not large["baseline"]
    assert text.count("| speed table |") == 2
    assert realtime["clip"].name == "airplane-1.mp4" == int8["clip"].name
    assert int8["otb"] == accuracy["otb"]
    readme_page.write_text("no markers\n")
    assert readme.main(["--readme", str(readme_page)]) == 2
    assert "has no Results markers" in capsys.readouterr().err


def test_readme_states_the_command_that_regenerates_it(tmp_path, monkeypatch, readme_page):
    """The command in the section, parsed again, gives the options of the run that wrote it."""
    monkeypatch.setenv("TRACKER_WEIGHTS", str(shared_path("weights", "nanotrack")))
    real_main, calls = _fake_steps(monkeypatch)
    argv = ["--readme", str(readme_page), "--reports", str(tmp_path / "r"),
            "--frames", "7", "--realtime-frames", "9"]
    assert real_main(argv) == 0
    command = readme_page.read_text().split("Regenerate this section with `")[1].split("`")[0]
    words = shlex.split(command)
    assert words[:2] == ["python", "tools/readme_results.py"]
    stated = readme.build_parser().parse_args(words[2:])
    given = readme.build_parser().parse_args(argv)
    assert (stated.readme, stated.reports, stated.frames, stated.realtime_frames) == (
        given.readme, given.reports, 7, 9)
    assert not stated.otb.is_absolute()
    assert stated.otb.resolve() == shared_path("data", "otb").resolve()
    assert [calls[i]["frames"] for i in (1, 2)] == [9, 7]
    assert readme.command_line(stated, stated.otb) == command


def test_a_row_per_model_backend_and_threads_against_the_same_threads_baseline(
    monkeypatch, small_matmul
):
    monkeypatch.setenv("TRACKER_WEIGHTS", str(shared_path("weights", "nanotrack")))
    code, out, err = _cli("speed", "--model", "nanotrack-v1", "--model", "nanotrack-v2",
                          "--backend", "torch,onnxruntime", "--threads", "1,2", "--frames", "2",
                          "--json")
    assert code == 0, err
    timings = json.loads(out)["timings"]
    baseline = "cv2.TrackerNano (nanotrack-v2 ONNX)"
    assert sorted((t["tracker"], t["backend"], t["threads"]) for t in timings) == sorted(
        [(m, b, n) for m in ("nanotrack-v1", "nanotrack-v2") for b in ("torch", "onnxruntime")
         for n in (1, 2)] + [(baseline, "opencv", 1), (baseline, "opencv", 2)])
    baseline_fps = {t["threads"]: t["fps"] for t in timings if t["backend"] == "opencv"}
    assert all(t["frames"] == 2 for t in timings)
    for t in timings:
        assert t["vs_baseline"] == pytest.approx(t["fps"] / baseline_fps[t["threads"]], rel=1e-12)


def test_opencv_baseline_box_is_rounded_half_away_from_zero():
    assert speed.opencv_rect((84.5, 2.5, -0.5, 10.49)) == (85, 3, -1, 10)
    assert speed.opencv_rect((-2.5, 0.4999, 33.5000001, 7.0)) == (-3, 0, 34, 7)
    assert all(isinstance(v, int) for v in speed.opencv_rect((1.2, 2.7, 3.5, 4.5)))


def _report_with_a_long_label(baseline=True):
    timings = [
        speed._add_flops(speed.summarize(label, backend, 2, [1 / fps] * 3), 1.56e8, 100.0)
        for label, backend, fps in (("nanotrack-v2", "onnxruntime", 612.3456),
                                    ("cv2.TrackerNano (nanotrack-v2 ONNX)", "opencv", 434.5))
    ][:2 if baseline else 1]
    return speed.SpeedReport(clip="clip.mp4", frames=3, machine_gflops={2: 100.0},
                             matmul_gflops={2: {"onnxruntime": 100.0}},
                             timings=speed._compare_with_baseline(timings))


def test_text_and_markdown_tables_show_the_same_columns_each_fitting_its_widest_cell():
    report = _report_with_a_long_label()
    lines = speed.format_report(report).splitlines()
    table = lines[lines.index("") + 1:]
    table = table[:table.index("")]
    assert len(table) == 2 + len(report.timings)
    assert len({len(line) for line in table}) == 1, "every line as wide as the widest row"
    split = [[cell for cell in line.split("  ") if cell.strip()] for line in table]
    assert [c.strip() for c in split[0]] == list(speed.TABLE_HEADER)
    assert [[c.strip() for c in row] for row in split[2:]] == speed.table_rows(report)
    assert table[3].startswith("cv2.TrackerNano (nanotrack-v2 ONNX)  opencv")
    assert split[2][-1].strip() == f"{612.3456 / 434.5:.2f}x"
    markdown = speed.format_markdown(report, "cmd").splitlines()
    assert [c.strip() for c in markdown[0].strip("|").split("|")] == list(speed.TABLE_HEADER)
    assert [c.strip() for c in markdown[3].strip("|").split("|")] == speed.table_rows(report)[1]


def test_a_run_without_the_baseline_has_no_baseline_column():
    report = _report_with_a_long_label(baseline=False)
    assert [t.vs_baseline for t in report.timings] == [None]
    assert speed.table_header(report) == speed.TABLE_HEADER[:-1]
    assert [len(row) for row in speed.table_rows(report)] == [len(speed.TABLE_HEADER) - 1]
    for text in (speed.format_report(report), speed.format_markdown(report, "cmd")):
        assert "cv2.TrackerNano" not in text
    with_baseline = speed.format_markdown(_report_with_a_long_label(), "cmd")
    assert with_baseline.count("vs cv2.TrackerNano") == 2 and speed.BASELINE_NOTE in with_baseline


def test_graph_flops_count_every_multiply_add_operator(tmp_path):
    """Conv (grouped), ConvTranspose, MatMul (batched) and Gemm (transposed A), by hand."""
    value = functools.partial(helper.make_tensor_value_info, elem_type=TensorProto.FLOAT)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], group=2, pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", ["c", "wt"], ["t"], strides=[2, 2]),
        helper.make_node("MatMul", ["a", "b"], ["m"]),
        helper.make_node("Gemm", ["g", "h"], ["y"], transA=1),
    ]
    weights = [helper.make_tensor("w", TensorProto.FLOAT, [6, 2, 3, 3], np.ones(108)),
               helper.make_tensor("wt", TensorProto.FLOAT, [6, 2, 2, 2], np.ones(48))]
    graph = helper.make_graph(
        nodes, "ops",
        [value(name="x", shape=["batch", 4, 8, 8]), value(name="a", shape=[2, 3, 5]),
         value(name="b", shape=[5, 7]), value(name="g", shape=[5, 4]), value(name="h", shape=[5, 6])],
        [value(name=n, shape=None) for n in ("t", "m", "y")], initializer=weights,
    )
    path = tmp_path / "ops.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    conv = 3 * 6 * 8 * 8 * (2 * 3 * 3)  # batch 3: every output sums (4 / 2 groups) x 3 x 3
    transposed = 3 * 6 * 8 * 8 * (2 * 2 * 2)  # every input value meets 2 channels x 2 x 2
    assert flops.graph_flops(path, {"x": [3, 4, 8, 8]}) == 2 * (
        conv + transposed + 2 * 3 * 7 * 5 + 4 * 6 * 5)


_SPEED_WITHOUT_TORCH = """
from tracker.benchmark.__main__ import main

code = main(["speed", "--model", "nanotrack-v2", "--backend", "onnxruntime", "--threads", "1",
             "--frames", "2", "--no-baseline", "--json"])
if code:
    sys.exit(code)
"""


def test_flops_are_counted_from_the_onnx_graph_without_torch():
    """A torch-free speed run counts FLOPs from NanoTrack's published graphs: torch's count
    of the same network within 1%."""
    env = {"TRACKER_WEIGHTS": str(shared_path("weights", "nanotrack"))}
    result = run_without_torch(_SPEED_WITHOUT_TORCH, env=env)
    assert result.returncode == 0, result.stderr
    (timing,) = json.loads(result.stdout)["timings"]
    torch_count = flops.torch_search_flops("nanotrack-v2")
    assert torch_count == pytest.approx(_hand_counted_flops("nanotrack-v2"))
    assert timing["gflops_per_frame"] * 1e9 == pytest.approx(torch_count, rel=0.01)


def test_readme_speed_table_states_the_command_that_gives_it(tmp_path, small_matmul, capsys):
    """The README generator calls measure_speed; the command under its table, parsed by the
    benchmark's own parser, asks for the same run."""
    clip = shared_path("data", "clips", "airplane-1.mp4")
    table = readme.speed_markdown(clip, ["nanotrack-v2", "siamfc-alexnet"], 3, False, tmp_path,
                                  "speed-large.md")
    rows = [line.replace(" (untrained)", "").split(" | ")[:3]
            for line in table.splitlines() if line.startswith("| ")][2:]
    assert sorted(rows) == sorted(
        [f"| {model}", backend, "2"]
        for model in ("nanotrack-v2", "siamfc-alexnet") for backend in ("torch", "onnxruntime"))
    assert "over 3 frames of airplane-1.mp4" in table
    command = table.split("Generated by `")[1].split("`")[0]
    words = shlex.split(command)
    assert words[:4] == ["python", "-m", "tracker.benchmark", "speed"]
    stated = build_parser().parse_args(words[3:])
    assert (stated.models, str(stated.frames), stated.clip, stated.untrained,
            stated.no_baseline) == (["nanotrack-v2", "siamfc-alexnet"], "3", clip, True, True)
    assert stated.markdown == tmp_path / "speed-large.md"
    assert "nanotrack-v2" in capsys.readouterr().out
