"""``python -m tracker.benchmark speed``: report contents, FLOP count, clip choice, errors.

Timings themselves are not asserted (they depend on the machine); what is checked is that
every reported number is computed from what it claims to be computed from.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import shared_path
from tracker.benchmark import speed
from tracker.benchmark.__main__ import main
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


def test_json_report_holds_every_number(monkeypatch):
    monkeypatch.setenv("TRACKER_WEIGHTS", str(shared_path("weights", "nanotrack")))
    code, out, err = _cli("speed", "--model", "nanotrack-v2", "--frames", "15", "--threads", "1",
                          "--json")
    assert code == 0, err
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


def test_text_report_and_untrained_models(monkeypatch, tmp_path):
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


def test_generated_clip_when_the_shared_one_is_absent(monkeypatch, tmp_path):
    monkeypatch.setenv("TRACKER_SHARED", str(tmp_path))
    clip, frames, box = speed.load_clip(None, 12)
    assert clip.startswith("generated") and len(frames) == 12
    x, y, w, h = (int(v) for v in box)
    first = frames[0]
    assert first.shape == (360, 640, 3)
    # The target patch sits exactly inside the box on the first frame.
    assert not np.array_equal(first[y:y + h, x:x + w], frames[0][y + h:y + 2 * h, x:x + w])
    moved = [np.abs(f.astype(int) - first).sum() for f in frames[1:]]
    assert all(m > 0 for m in moved)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "nanotrack-v9"], "unknown model 'nanotrack-v9'"),
        (["--threads", "0"], "--threads must list positive integers"),
        (["--threads", "two"], "--threads must be comma-separated integers"),
        (["--backend", "tensorrt"], "--backend must be among torch, onnxruntime"),
        (["--frames", "0"], "--frames must be at least 1"),
        (["--clip", "missing.mp4"], "--clip: no such video"),
    ],
)
def test_errors_are_one_line(args, message):
    code, _, err = _cli("speed", *args)
    assert code == 2
    assert err.strip().splitlines() == [f"error: {err.strip()[7:]}"]
    assert message in err


def test_readme_section_is_replaced_between_its_markers(tmp_path, monkeypatch):
    """``readme`` runs accuracy and speed with --markdown and splices their tables in."""
    from tracker.benchmark import __main__ as cli
    from tracker.benchmark import readme

    monkeypatch.setenv("TRACKER_WEIGHTS", str(shared_path("weights", "nanotrack")))
    calls = []
    real_main = cli.main

    def fake_step(argv):
        if argv[0] == "readme":
            return real_main(argv)
        calls.append(argv)
        target = argv[argv.index("--markdown") + 1]
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(f"| {argv[0]} table |\n")
        return 0

    monkeypatch.setattr(cli, "main", fake_step)
    page = tmp_path / "README.md"
    page.write_text(f"intro\n{readme.START}\nold numbers\n{readme.END}\noutro\n")
    code = real_main(["readme", "--readme", str(page), "--reports", str(tmp_path / "r")])
    assert code == 0
    text = page.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert "old numbers" not in text
    assert "| accuracy table |" in text and "| speed table |" in text
    accuracy, timing = calls
    assert [accuracy[i + 1] for i, a in enumerate(accuracy) if a == "--model"] == [
        "nanotrack-v1", "nanotrack-v2", "nanotrack-v3"]
    assert "--untrained" in timing and timing.count("--model") == 11
    page.write_text("no markers\n")
    code, _, err = _cli("readme", "--readme", str(page))
    assert code == 2 and "has no Results markers" in err
