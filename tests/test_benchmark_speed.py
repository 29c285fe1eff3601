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
from tracker import api
from tracker.benchmark import flops, multi_speed, speed
from tools import readme_multi, readme_results as readme
from tracker.benchmark.__main__ import build_parser, main
from tracker.models import build_model
from tracker.multi import MultiTracker


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


def _recording_trackers(monkeypatch):
    """Record every ``Tracker.init``/``update`` and ``MultiTracker.update`` of the run:
    ``{"tracker": {id: [init box, box, box, ...]}, "multi": {id: [{target: box}, ...]}}``."""
    calls = {"tracker": {}, "multi": {}}
    tracker_class, multi_class = api.Tracker, MultiTracker
    init, update = tracker_class.init, tracker_class.update
    multi_update = multi_class.update

    def recording_init(self, frame, box):
        calls["tracker"][id(self)] = [tuple(box)]
        return init(self, frame, box)

    def recording_update(self, frame):
        result = update(self, frame)
        calls["tracker"][id(self)].append(result.box)
        return result

    def recording_multi_update(self, frame):
        results = multi_update(self, frame)
        calls["multi"].setdefault(id(self), []).append({k: r.box for k, r in results.items()})
        return results

    monkeypatch.setattr(tracker_class, "init", recording_init)
    monkeypatch.setattr(tracker_class, "update", recording_update)
    monkeypatch.setattr(multi_class, "update", recording_multi_update)
    return calls


def test_json_report_holds_every_number(monkeypatch, small_matmul):
    monkeypatch.setenv("TRACKER_WEIGHTS", str(shared_path("weights", "nanotrack")))
    clip = shared_path("data", "clips", "airplane-1.mp4")
    calls = _recording_trackers(monkeypatch)
    code, out, err = _cli("speed", "--model", "nanotrack-v2", "--frames", "15", "--threads", "1",
                          "--json", "--clip", str(clip))
    assert code == 0, err
    # The timed tracker really tracked: started on the clip's first box (1-based file, 0-based
    # box), one update per frame, and still on the airplane at the last timed frame.
    truth = np.loadtxt(clip.with_suffix(".txt"), delimiter=",")
    (recorded,) = calls["tracker"].values()
    assert recorded[0] == tuple(truth[0] - [1, 1, 0, 0])
    boxes = np.array(recorded[1:])
    assert len(boxes) == speed.WARMUP_FRAMES + 15
    overlaps = ious(boxes, truth[1:len(boxes) + 1] - [1, 1, 0, 0])
    assert overlaps.min() > 0.6, overlaps  # measured: 0.70 to 0.90 over these 25 frames
    report = json.loads(out)
    assert report["clip"].endswith("airplane-1.mp4") and report["frames"] == 15
    assert report["machine_gflops"]["1"] == max(report["matmul_gflops"]["1"].values()) > 1
    ours, baseline = report["timings"]
    assert baseline["backend"] == "opencv" and "TrackerNano" in baseline["tracker"]
    assert ours["tracker"] == "nanotrack-v2" and ours["frames"] == 15
    assert ours["median_ms"] <= ours["p95_ms"]
    assert ours["cpu_ms"] > 0 and baseline["cpu_ms"] > 0
    assert ours["gflops_per_frame"] * 1e9 == pytest.approx(_hand_counted_flops("nanotrack-v2"))
    assert ours["achieved_gflops"] == pytest.approx(ours["gflops_per_frame"] * ours["fps"])
    assert ours["limit_ratio"] == pytest.approx(ours["achieved_gflops"] / report["machine_gflops"]["1"])
    assert ours["vs_baseline"] == pytest.approx(ours["fps"] / baseline["fps"])


def test_trackers_take_turns_over_every_frame_in_order():
    calls = []
    updates = [lambda frame, who=who: calls.append((who, frame)) for who in "ab"]
    frames = list(range(3 + 12))
    measured = speed.time_interleaved(updates, frames, warmup=3, rounds=4)
    assert [len(m.seconds) for m in measured] == [12, 12]
    for who in "ab":
        assert [frame for caller, frame in calls if caller == who] == frames
    timed = [caller for caller, frame in calls if frame >= 3]
    assert "".join(timed) == "aaabbb" * 4


def test_camera_pacing_sleeps_the_rest_of_each_frame_and_counts_cpu_time(monkeypatch):
    """At a camera's rate each call is followed by a sleep up to the frame period (not timed);
    the CPU time of each tracker's turns is summed, here a known burn per call."""
    slept = []
    monkeypatch.setattr(speed.time, "sleep", slept.append)
    cpu = iter(range(1000))
    monkeypatch.setattr(speed.time, "process_time", lambda: next(cpu) * 0.5)
    updates = [lambda frame: None, lambda frame: None]
    measured = speed.time_interleaved(updates, list(range(2 + 6)), warmup=2, rounds=3,
                                      camera_fps=20.0)
    assert len(slept) == 12
    for calls in measured:
        assert len(calls.seconds) == 6
        assert calls.cpu_seconds == pytest.approx(3 * 0.5)  # one process_time step per turn
    assert all(0.05 - 0.01 < wait <= 0.05 for wait in slept)
    timing = speed.summarize("t", "torch", 2, measured[0].seconds, measured[0].cpu_seconds)
    assert timing.cpu_ms == pytest.approx(1000 * 1.5 / 6)
    slept.clear()
    speed.time_interleaved(updates, list(range(8)), warmup=2, rounds=3)
    assert slept == []


@pytest.mark.parametrize("value", ["0", "-5", "nan", "fast", "2000"])
def test_camera_rate_outside_its_range_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["speed", "--camera-fps", value])
    assert stop.value.code == 2
    assert f"--camera-fps: expected frames per second in (0, 1000], got '{value}'" in \
        capsys.readouterr().err


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


# --- speed --targets: the batched MultiTracker against independent trackers ---------------

def test_targets_report_a_row_per_contender_and_count_and_the_batched_tracker_tracks(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("TRACKER_WEIGHTS", str(shared_path("weights", "nanotrack")))
    clip = shared_path("data", "clips", "airplane-1.mp4")
    calls = _recording_trackers(monkeypatch)
    plot, table = tmp_path / "plots" / "multi.png", tmp_path / "multi.md"
    code, out, err = _cli("speed", "--model", "nanotrack-v2", "--frames", "4", "--threads", "1",
                          "--backend", "torch,onnxruntime", "--targets", "2,1", "--clip", clip,
                          "--json", "--plot", plot, "--markdown", table)
    assert code == 0, err
    report = json.loads(out)
    assert report["clip"] == str(clip) and report["frames"] == 4 and report["targets"] == [1, 2]
    rows = report["timings"]
    assert [(t["tracker"], t["backend"], t["targets"], t["contender"]) for t in rows] == [
        ("nanotrack-v2", backend, n, kind) for backend in ("torch", "onnxruntime")
        for n in (1, 2) for kind in ("batched", "independent")
    ] + [("nanotrack-v2", "opencv", n, "cv2.TrackerNano") for n in (1, 2)]
    fps = {(t["backend"], t["targets"], t["contender"]): t["fps"] for t in rows}
    for t in rows:
        assert t["frames"] == 4 and t["threads"] == 1 and t["median_ms"] <= t["p95_ms"]
        assert t["per_target_ms"] == pytest.approx(t["median_ms"] / t["targets"], rel=1e-12)
        if t["contender"] == "batched":
            n = t["targets"]
            own = fps[t["backend"], n, "independent"]
            assert t["vs_independent"] == pytest.approx(t["fps"] / own)
            assert t["vs_opencv"] == pytest.approx(t["fps"] / fps["opencv", n, "cv2.TrackerNano"])
        else:
            assert t["vs_independent"] is None and t["vs_opencv"] is None
    # Tracking really happened: a batched tracker per backend and count, one update per frame;
    # each target's boxes are those of an independent tracker started on the same box, and
    # the first target (the clip's box) stays on the airplane.
    truth = np.loadtxt(clip.with_suffix(".txt"), delimiter=",") - [1, 1, 0, 0]
    updates = speed.WARMUP_FRAMES + 4
    assert [len(boxes) for boxes in calls["tracker"].values()] == [1 + updates] * 6
    assert sorted(len(frames[0]) for frames in calls["multi"].values()) == [1, 1, 2, 2]
    assert [len(frames) for frames in calls["multi"].values()] == [updates] * 4
    _assert_batched_targets_match_their_own_trackers(
        calls, multi_speed.target_boxes(tuple(truth[0]), 2, (640, 360)))
    for frames in calls["multi"].values():
        first = np.array([frame[min(frame)] for frame in frames])
        overlaps = ious(first, truth[1:updates + 1])
        assert overlaps.min() > 0.6, overlaps  # measured: 0.72 to 0.90 over these frames
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cv2.imread(str(plot)).shape == (480, 640, 3)
    command = table.read_text().split("Generated by `")[1].split("`")[0]
    stated = build_parser().parse_args(shlex.split(command)[3:])
    assert (stated.targets, stated.plot, stated.frames, stated.markdown) == ("2,1", plot, "4", table)


def test_target_boxes_are_distinct_same_size_tiles_inside_the_frame():
    box = (367.0, 101.0, 41.0, 16.0)  # airplane-1's first box in its 640 x 360 frames
    boxes = multi_speed.target_boxes(box, 16, (640, 360))
    assert boxes[0] == box and len(set(boxes)) == 16
    assert multi_speed.target_boxes(box, 16, (640, 360)) == boxes  # deterministic
    array = np.array(boxes)
    assert (array[:, 2:] == [41, 16]).all()
    assert (array[:, :2] >= 0).all() and (array[:, 0] + 41 <= 640).all()
    assert (array[:, 1] + 16 <= 360).all()
    for i in range(16):  # no box overlaps another
        assert (ious(np.delete(array, i, axis=0), np.repeat(array[i:i + 1], 15, axis=0)) == 0).all()
    # Spread over the frame rather than packed into its first row.
    assert array[1:, 1].min() == 0 and array[1:, 1].max() > 300
    assert multi_speed.target_boxes(box, 1, (640, 360)) == [box]
    # A 300 x 200 box leaves one cell beside it in a 640 x 360 frame (2 columns, 1 row).
    assert multi_speed.target_boxes((0, 100, 300, 200), 2, (640, 360)) == [
        (0, 100, 300, 200), (300.0, 0.0, 300.0, 200.0)]
    with pytest.raises(ValueError, match="holds 2 boxes of 300x200 that do not overlap, not 3"):
        multi_speed.target_boxes((0, 100, 300, 200), 3, (640, 360))


@pytest.mark.parametrize(
    "args,message",
    [
        (["--targets", "1,0"], "--targets: expected a positive integer, got '0'"),
        (["--targets", "four"], "--targets: expected a positive integer, got 'four'"),
        (["--targets", ","], "--targets: expected comma-separated positive integers, got ','"),
        (["--plot", "p.png"], "--plot applies with --targets"),
    ],
)
def test_bad_targets_are_a_one_line_error(args, message):
    code, out, err = _cli("speed", "--frames", "2", *args)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"error: {message}"]


@pytest.mark.parametrize(
    "options,message",
    [
        ({"targets": []}, "targets: expected at least one target count"),
        ({"targets": [2, 0]}, "targets: expected a positive integer, got 0"),
        ({"backends": ["tensorrt"]}, "backends must be among torch, onnxruntime, got 'tensorrt'"),
        ({"frames": 0}, "frames: expected a positive integer, got 0"),
    ],
)
def test_measure_multi_speed_names_the_argument_it_refuses(options, message):
    with pytest.raises(ValueError) as error:
        multi_speed.measure_multi_speed(["nanotrack-v2"], **options)
    assert str(error.value) == message


def _multi_report(models=("nanotrack-v2",), targets=(1, 2), baseline=True):
    """A report of made-up timings, built as measure_multi_speed builds its rows."""
    timings = {}
    for model in models:
        for backend in ("onnxruntime", "torch"):
            for kind in (multi_speed.BATCHED, multi_speed.INDEPENDENT):
                for n in targets:
                    ms = n * (3.0 if kind == multi_speed.BATCHED else 4.0)
                    timings[model, backend, kind, 2, n] = multi_speed.MultiTiming(
                        tracker=model, contender=kind, backend=backend, threads=2, targets=n,
                        frames=3, median_ms=ms, p95_ms=ms + 1, fps=1000 / ms, per_target_ms=ms / n)
        for n in targets if baseline else ():
            timings[model, "opencv", multi_speed.OPENCV, 2, n] = multi_speed.MultiTiming(
                tracker=model, contender=multi_speed.OPENCV, backend="opencv", threads=2,
                targets=n, frames=3, median_ms=5.0 * n, p95_ms=5.0 * n + 1, fps=200 / n,
                per_target_ms=5.0)
    rows = [multi_speed._with_ratios(timings, key[:3], 2, key[4]) for key in timings]
    return multi_speed.MultiSpeedReport(clip="clip.mp4", frames=3, targets=list(targets),
                                        timings=rows)


def test_text_and_markdown_tables_of_the_multi_target_report():
    report = _multi_report()
    rows = multi_speed.table_rows(report)
    assert rows[0] == ["nanotrack-v2", "onnxruntime", "2", "1", "batched", "3.00", "4.00",
                       "333.3", "3.00", "1.33x", "1.67x"]
    assert rows[-1] == ["nanotrack-v2", "opencv", "2", "2", "cv2.TrackerNano", "10.00", "11.00",
                        "100.0", "5.00", "-", "-"]
    lines = multi_speed.format_multi_report(report).splitlines()
    assert lines[2].split() == [word for cell in multi_speed.TABLE_HEADER for word in cell.split()]
    assert len({len(line) for line in lines[2:4 + len(rows)]}) == 1
    markdown = multi_speed.format_multi_markdown(report, "cmd").splitlines()
    assert markdown[2] == "| " + " | ".join(rows[0]) + " |"
    assert "Generated by `cmd`" in markdown[-1] and "vs cv2.TrackerNano" in markdown[-1]
    without = _multi_report(baseline=False)
    assert multi_speed.table_header(without) == multi_speed.TABLE_HEADER[:-1]
    assert "cv2.TrackerNano" not in multi_speed.format_multi_markdown(without, "cmd")


def test_multi_target_plot_is_a_png_with_a_panel_per_report(tmp_path):
    path = multi_speed.plot_multi_speed([_multi_report(), _multi_report(targets=(1, 4, 16))],
                                        tmp_path / "a" / "plot.png", titles=["small", "large"])
    assert path == tmp_path / "a" / "plot.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cv2.imread(str(path)).shape == (480, 1280, 3)
    with pytest.raises(ValueError, match="titles: expected 1 titles, got 2"):
        multi_speed.plot_multi_speed([_multi_report()], tmp_path / "b.png", titles=["a", "b"])


@pytest.fixture
def multi_page(tmp_path):
    page = tmp_path / "README.md"
    page.write_text(f"intro\n{readme_multi.START}\nold numbers\n{readme_multi.END}\noutro\n")
    return page


def test_readme_multi_replaces_its_section_and_states_its_command(
    tmp_path, monkeypatch, multi_page
):
    """``tools/readme_multi.py`` with the benchmark replaced by made-up reports: its tables,
    the plot and the command that regenerates it between the markers, nothing else changed."""
    calls = []

    def fake_measure(models, **options):
        calls.append({"models": list(models), **options})
        return _multi_report(models, options["targets"], options["baseline"])

    monkeypatch.setattr(readme_multi, "measure_multi_speed", fake_measure)
    reports = tmp_path / "r"
    argv = ["--readme", str(multi_page), "--reports", str(reports), "--frames", "3",
            "--realtime-frames", "7", "--plot", str(tmp_path / "docs" / "speed.png")]
    assert readme_multi.main(argv) == 0
    text = multi_page.read_text()
    assert text.startswith(f"intro\n{readme_multi.START}\n") and text.endswith(
        f"{readme_multi.END}\noutro\n")
    assert "old numbers" not in text
    realtime, large = calls
    assert realtime["models"] == ["nanotrack-v2"] and realtime["targets"] == (1, 2, 4, 8, 16)
    assert realtime["backends"] == ("onnxruntime", "torch") and realtime["threads"] == [2]
    assert realtime["frames"] == 7 and realtime["baseline"] and realtime["untrained"]
    assert large["models"] == ["siamrpnpp-alex", "siamfc-alexnet", "dasiamrpn-otb"]
    assert large["targets"] == (1, 4, 16) and large["frames"] == 3 and not large["baseline"]
    assert realtime["clip"].name == "airplane-1.mp4" == large["clip"].name
    # Both tables, each with the speed command that gives it.
    assert text.count("| nanotrack-v2 | onnxruntime | 2 | 16 | batched |") == 1
    assert text.count("| siamfc-alexnet | torch | 2 | 16 | independent |") == 1
    commands = [c.split("`")[0] for c in text.split("Generated by `")[1:]]
    stated = [build_parser().parse_args(shlex.split(c)[3:]) for c in commands]
    assert [(s.models, s.targets, s.frames, s.no_baseline) for s in stated] == [
        (["nanotrack-v2"], "1,2,4,8,16", "7", False),
        (["siamrpnpp-alex", "siamfc-alexnet", "dasiamrpn-otb"], "1,4,16", "3", True)]
    plot = tmp_path / "docs" / "speed.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "30 FPS)](docs/speed.png)" in text
    command = text.split("Regenerate this section with `")[1].split("`")[0]
    words = shlex.split(command)
    assert words[:2] == ["python", "tools/readme_multi.py"]
    assert vars(readme_multi.build_parser().parse_args(words[2:])) == vars(
        readme_multi.build_parser().parse_args(argv))


def test_readme_multi_refuses_a_readme_without_its_markers(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(readme_multi, "measure_multi_speed",
                        lambda *a, **k: pytest.fail("measured before checking the markers"))
    page = tmp_path / "README.md"
    page.write_text(f"intro\n{readme_multi.START}\nno end marker\n")
    assert readme_multi.main(["--readme", str(page)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {page} has no multi-target markers") and err.count("\n") == 1
    assert page.read_text() == f"intro\n{readme_multi.START}\nno end marker\n"


def _boxes_by_start(calls):
    """The recorded independent trackers' boxes (an array per tracker) by their init box."""
    single = {}
    for boxes in calls["tracker"].values():
        single.setdefault(boxes[0], []).append(np.array(boxes[1:]))
    return single


def _assert_batched_targets_match_their_own_trackers(calls, boxes):
    """Every recorded MultiTracker's target i gave the boxes of an independent tracker started
    on ``boxes[i]``, within 1e-4 pixels."""
    single = _boxes_by_start(calls)
    for updates in calls["multi"].values():
        for index, target in enumerate(sorted(updates[0])):
            batched = np.array([frame[target] for frame in updates])
            errors = [np.abs(batched - own).max() for own in single[boxes[index]]]
            assert min(errors) < 1e-4, errors


def test_untrained_networks_are_shared_by_the_batched_and_the_independent_trackers(
    monkeypatch, tmp_path
):
    """Without weights (--untrained) every tracker of one model and backend runs the same
    random network: the batched targets' boxes are the independent trackers' ones."""
    monkeypatch.setenv("TRACKER_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TRACKER_CACHE", str(tmp_path))
    calls = _recording_trackers(monkeypatch)
    report = multi_speed.measure_multi_speed(["nanotrack-v1"], targets=[2], threads=[1],
                                             frames=2, untrained=True)
    assert [(t.tracker, t.backend, t.contender) for t in report.timings] == [
        ("nanotrack-v1 (untrained)", "torch", "batched"),
        ("nanotrack-v1 (untrained)", "torch", "independent")]
    _, frames, box = speed.load_clip(None, 3 + speed.WARMUP_FRAMES)
    expected = multi_speed.target_boxes(box, 2, (640, 360))
    assert sorted(_boxes_by_start(calls)) == sorted(expected) and len(calls["multi"]) == 1
    _assert_batched_targets_match_their_own_trackers(calls, expected)
