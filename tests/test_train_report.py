"""The training log (JSON lines, resume truncation, rank > 0 silent), TensorBoard when installed
and the curves PNG."""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest

from tracker.train.report import RunLog, plot_curves, read_log

# Matplotlib's tab:blue and tab:red in BGR: the per-step loss line and the best-epoch star.
STEP_BGR = (180, 119, 31)
BEST_BGR = (40, 39, 214)


@pytest.fixture
def no_tensorboard(monkeypatch):
    """Make ``torch.utils.tensorboard`` unimportable, as without the ``train`` extra."""
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write_run(out, epochs=3, steps=4, val=True, **options):
    with RunLog(out, **options) as log:
        for epoch in range(epochs):
            for index in range(steps):
                step = epoch * steps + index
                log.log_step(epoch, step, 2.0 / (1 + step), 1.5 / (1 + step), 0.5 / (1 + step),
                             0.01, 40.0)
            auc = (0.3, 0.5, 0.45)[epoch % 3] if val else None
            log.log_epoch(epoch, 1.0 / (1 + epoch), auc, 10.0 + epoch, epoch)
    return out / "log.jsonl"


def test_steps_and_epochs_are_json_lines_flushed_as_written(tmp_path, no_tensorboard):
    with RunLog(tmp_path) as log:
        assert not log.tensorboard_active
        log.log_step(0, 0, 1.25, 1.0, 0.25, 0.001, 37.5, grad_norm=3)
        assert _lines(tmp_path / "log.jsonl") == [
            {"kind": "step", "epoch": 0, "step": 0, "loss": 1.25, "loss_cls": 1.0,
             "loss_loc": 0.25, "lr": 0.001, "pairs_per_s": 37.5, "grad_norm": 3.0}]
        log.log_epoch(0, float("nan"), None, 12.5, 2, pairs=64)
        assert _lines(tmp_path / "log.jsonl")[1] == {
            "kind": "epoch", "epoch": 0, "loss": None, "val_auc": None, "seconds": 12.5,
            "skipped_frames": 2, "pairs": 64.0}
        with pytest.raises(ValueError, match="grad_norm must be a number, got 'big'"):
            log.log_step(0, 1, 1.0, 1.0, 0.0, 0.001, 1.0, grad_norm="big")
    assert "NaN" not in (tmp_path / "log.jsonl").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl"]


def test_a_new_log_starts_empty(tmp_path, no_tensorboard):
    _write_run(tmp_path)
    with RunLog(tmp_path) as log:
        log.log_epoch(0, 0.5, None, 1.0, 0)
    assert [r["kind"] for r in _lines(tmp_path / "log.jsonl")] == ["epoch"]


def test_resume_drops_the_lines_after_the_checkpoint(tmp_path, no_tensorboard):
    log_path = _write_run(tmp_path, epochs=3, steps=2)
    with log_path.open("a") as sink:
        sink.write('{"kind": "step", "epoch": 2, "st')  # the half line of a killed run
    with RunLog(tmp_path, resume=True, start_epoch=2) as log:
        assert [(r["kind"], r["epoch"]) for r in _lines(log_path)] == [
            ("step", 0), ("step", 0), ("epoch", 0), ("step", 1), ("step", 1), ("epoch", 1)]
        log.log_step(2, 4, 0.1, 0.05, 0.05, 0.002, 30.0)
    records = read_log(log_path)
    assert len(records) == 7
    assert records[-1]["step"] == 4 and records[-1]["lr"] == 0.002


def test_other_ranks_write_nothing(tmp_path):
    out = tmp_path / "run"
    with RunLog(out, enabled=False, tensorboard=True) as log:
        assert not log.tensorboard_active
        log.log_step(0, 0, 1.0, 1.0, 0.0, 0.01, 10.0)
        log.log_epoch(0, 1.0, 0.5, 1.0, 0)
    assert not out.exists()


def test_tensorboard_events_when_installed(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is an optional extra (train)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _write_run(tmp_path, epochs=2, steps=3)
    with RunLog(tmp_path, resume=True, start_epoch=1) as log:
        assert log.tensorboard_active
        log.log_step(1, 3, 9.0, 4.5, 4.5, 0.01, 40.0)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, round(e.value, 4)) for e in events.Scalars("train/loss")] == [
        (0, 2.0), (1, 1.0), (2, 0.6667), (3, 9.0)]
    assert [e.value for e in events.Scalars("epoch/val_auc")] == [pytest.approx(0.3)]


def test_the_curves_png_has_a_validation_panel_when_the_log_has_auc(tmp_path, no_tensorboard):
    with_auc = plot_curves(_write_run(tmp_path / "a"), tmp_path / "a" / "curves.png")
    without = plot_curves(_write_run(tmp_path / "b", val=False), tmp_path / "b" / "curves.png")
    assert with_auc == tmp_path / "a" / "curves.png"
    images = [cv2.imread(str(path)) for path in (with_auc, without)]
    assert [image.shape for image in images] == [(700, 800, 3), (350, 800, 3)]
    for image in images:
        assert image.reshape(-1, 3).std(axis=0).min() > 10
        assert _pixels_of(image, STEP_BGR) > 20
    assert _pixels_of(images[0], BEST_BGR) > 50
    assert _pixels_of(images[1], BEST_BGR) == 0


def test_plot_curves_refuses_a_missing_or_empty_log(tmp_path):
    with pytest.raises(FileNotFoundError, match="log_path: training log .*absent.jsonl not found"):
        plot_curves(tmp_path / "absent.jsonl", tmp_path / "curves.png")
    (tmp_path / "log.jsonl").write_text("not json\n")
    with pytest.raises(ValueError, match="log_path: .*log.jsonl holds no step or epoch record"):
        plot_curves(tmp_path / "log.jsonl", tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()


def _pixels_of(image: np.ndarray, bgr) -> int:
    distance = np.abs(image.astype(int) - np.array(bgr)).max(axis=2)
    return int((distance <= 12).sum())
