"""Training checkpoints: atomic writes, clear errors for damaged files, the run folder's identity
and the final weights loading into a tracker."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
import torch

import tracker
from tracker.errors import CheckpointError
from tracker.models import build_model
from tracker.train import checkpoints
from tracker.train.checkpoints import (
    RUN_OUTPUTS, latest_checkpoint, load_checkpoint, prepare_run_dir, save_checkpoint,
    save_model_weights)
from tracker.train.errors import TrainingError

IDENTITY = {
    "model": "nanotrack-v2",
    "recipe": {"schedule": {"epochs": 5}, "optim": {"lr": 0.01, "batch_size": 8}},
    "data": [{"kind": "otb", "path": "/data/otb", "weight": 1.0}],
}


def _state(value: float) -> dict:
    return {
        "epoch": 3,
        "model": {"w": torch.full((2, 3), value)},
        "numpy_random": np.random.RandomState(7).get_state(),
        "python_random": random.Random(7).getstate(),
        "recipe": {"optim": {"lr": value}},
    }


def _identity(**changes) -> dict:
    identity = json.loads(json.dumps(IDENTITY))
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = identity
        for key in parents:
            node = node[key]
        node[leaf] = value
    return identity


def test_a_saved_state_loads_back_on_the_cpu(tmp_path):
    path = tmp_path / "checkpoint.pth"
    save_checkpoint(path, _state(1.5))
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 3
    assert torch.equal(loaded["model"]["w"], torch.full((2, 3), 1.5))
    assert loaded["model"]["w"].device.type == "cpu"
    restored = np.random.RandomState()
    restored.set_state(loaded["numpy_random"])
    assert restored.randint(1 << 30) == np.random.RandomState(7).randint(1 << 30)
    assert loaded["recipe"] == {"optim": {"lr": 1.5}}
    assert os.listdir(tmp_path) == ["checkpoint.pth"]


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_save_that_dies_half_way_keeps_the_previous_checkpoint(tmp_path, monkeypatch, failure):
    path = tmp_path / "checkpoint.pth"
    save_checkpoint(path, _state(1.0))

    def dies_half_way(content, sink):
        sink.write(path.read_bytes()[:100])
        raise failure

    monkeypatch.setattr(checkpoints.torch, "save", dies_half_way)
    expected = CheckpointError if isinstance(failure, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as caught:
        save_checkpoint(path, _state(2.0))
    if expected is CheckpointError:
        assert str(caught.value) == (f"cannot write {path}: No space left on device (the "
                                     f"previous file, if any, is unchanged)")
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.full((2, 3), 1.0))
    assert os.listdir(tmp_path) == ["checkpoint.pth"]


def test_truncated_corrupt_and_missing_files_are_errors_naming_them(tmp_path):
    path = tmp_path / "checkpoint.pth"
    save_checkpoint(path, _state(1.0))
    whole = path.read_bytes()
    for content in (whole[: len(whole) // 2], b"", b"not a checkpoint at all"):
        path.write_bytes(content)
        with pytest.raises(CheckpointError) as caught:
            load_checkpoint(path)
        message = str(caught.value)
        assert message.startswith(f"checkpoint {path} cannot be read: it is truncated or corrupt (")
        assert "\n" not in message
    torch.save([1, 2], path)
    with pytest.raises(CheckpointError, match=f"checkpoint {path} holds a list, not a training"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="checkpoint .*absent.pth not found"):
        load_checkpoint(tmp_path / "absent.pth")
    with pytest.raises(ValueError, match="state must be a mapping .*got list"):
        save_checkpoint(path, [1])


def test_latest_checkpoint_is_the_run_folders_checkpoint_file(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    save_checkpoint(tmp_path / "checkpoint.pth", _state(1.0))
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint.pth"


def test_model_weights_load_into_a_tracker(tmp_path):
    torch.manual_seed(3)
    network = build_model("nanotrack-v2")
    path = tmp_path / "model.pth"
    save_model_weights(path, network)
    assert isinstance(torch.load(path, weights_only=True), dict)
    loaded = tracker.build_tracker("nanotrack-v2", weights=path)._runner.network.state_dict()
    expected = network.state_dict()
    assert list(loaded) == list(expected)
    assert all(torch.equal(loaded[key], expected[key]) for key in expected)


def test_diverged_weights_are_refused_and_not_written(tmp_path):
    network = torch.nn.Linear(2, 2)
    with torch.no_grad():
        network.weight[0, 0] = float("nan")
    with pytest.raises(CheckpointError, match=r"tensor 'weight' holds 1 NaN or infinite value\(s\) of 4"):
        save_model_weights(tmp_path / "model.pth", network)
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="network must be a torch module, got dict"):
        save_model_weights(tmp_path / "model.pth", {})


def test_a_fresh_folder_gets_the_runs_identity(tmp_path):
    out = tmp_path / "run"
    prepare_run_dir(out, {**IDENTITY, "data": [{"path": tmp_path / "otb"}]}, False, False)
    assert json.loads((out / "run.json").read_text()) == {
        **IDENTITY, "data": [{"path": str(tmp_path / "otb")}]}
    with pytest.raises(ValueError, match="identity must hold JSON values .*got a set"):
        prepare_run_dir(out, {"model": {1, 2}}, False, False)


def test_a_folder_holding_a_run_needs_overwrite_or_resume(tmp_path):
    prepare_run_dir(tmp_path, IDENTITY, False, False)
    prepare_run_dir(tmp_path, IDENTITY, False, False)  # nothing written yet besides run.json
    with pytest.raises(TrainingError) as caught:
        prepare_run_dir(tmp_path, _identity(model="siamfc-alexnet"), False, False)
    assert str(caught.value) == (f"{tmp_path} holds another training run (run.json): pass "
                                 f"--overwrite to replace it or --resume {tmp_path} to continue it")
    save_checkpoint(tmp_path / "checkpoint.pth", _state(1.0))
    (tmp_path / "log.jsonl").write_text("{}\n")
    with pytest.raises(TrainingError, match=r"holds another training run \(run.json, "
                                            r"checkpoint.pth, log.jsonl\)"):
        prepare_run_dir(tmp_path, IDENTITY, False, False)


def test_overwrite_clears_only_the_trainers_files(tmp_path):
    prepare_run_dir(tmp_path, IDENTITY, False, False)
    for name in RUN_OUTPUTS[1:]:
        if name == "tensorboard":
            (tmp_path / name).mkdir()
            (tmp_path / name / "events.out").write_text("x")
        else:
            (tmp_path / name).write_bytes(b"old")
    (tmp_path / ".checkpoint.pth.abc123.tmp").write_bytes(b"left by a killed save")
    (tmp_path / "notes.txt").write_text("mine")
    prepare_run_dir(tmp_path, _identity(model="siamfc-alexnet"), True, False)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "run.json"]
    assert json.loads((tmp_path / "run.json").read_text())["model"] == "siamfc-alexnet"


def test_resume_accepts_the_same_run_and_more_epochs_only(tmp_path):
    prepare_run_dir(tmp_path, IDENTITY, False, False)
    with pytest.raises(TrainingError, match=f"cannot resume {tmp_path}: it holds no "
                                            f"checkpoint.pth .*start it again with --overwrite"):
        prepare_run_dir(tmp_path, IDENTITY, False, True)
    save_checkpoint(tmp_path / "checkpoint.pth", _state(1.0))
    prepare_run_dir(tmp_path, IDENTITY, False, True)
    prepare_run_dir(tmp_path, _identity(recipe__schedule__epochs=8), False, True)
    assert json.loads((tmp_path / "run.json").read_text())["recipe"]["schedule"]["epochs"] == 8
    with pytest.raises(TrainingError) as caught:
        prepare_run_dir(tmp_path, _identity(recipe__schedule__epochs=6), False, True)
    assert str(caught.value) == (f"cannot resume {tmp_path}: recipe.schedule.epochs may only "
                                 f"grow on a resume (the run has 8, now 6)")


def test_resume_names_the_first_field_that_differs(tmp_path):
    prepare_run_dir(tmp_path, IDENTITY, False, False)
    save_checkpoint(tmp_path / "checkpoint.pth", _state(1.0))
    with pytest.raises(TrainingError) as caught:
        prepare_run_dir(tmp_path, _identity(recipe__optim__lr=0.05, model="x"), False, True)
    assert str(caught.value) == (f"cannot resume {tmp_path}: model differs (the run has "
                                 f"\"nanotrack-v2\", now \"x\"); resume with the run's settings "
                                 f"or start a new run in another folder")
    with pytest.raises(TrainingError, match=r"recipe.optim.lr differs \(the run has 0.01, now 0.05\)"):
        prepare_run_dir(tmp_path, _identity(recipe__optim__lr=0.05), False, True)
    changed = _identity()
    changed["data"][0]["weight"] = 2.0
    with pytest.raises(TrainingError, match=r"data\[0\].weight differs \(the run has 1.0, now 2.0\)"):
        prepare_run_dir(tmp_path, changed, False, True)
    del changed["data"]
    with pytest.raises(TrainingError, match=r"data differs \(the run has \[.*\], now no such field\)"):
        prepare_run_dir(tmp_path, changed, False, True)


def test_bad_folders_and_flags_are_one_line_errors(tmp_path):
    with pytest.raises(TrainingError, match=f"cannot resume {tmp_path}: it holds no run.json"):
        prepare_run_dir(tmp_path, IDENTITY, False, True)
    with pytest.raises(ValueError, match="overwrite and resume exclude each other"):
        prepare_run_dir(tmp_path, IDENTITY, True, True)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match=f"--out: {a_file} is not a folder"):
        prepare_run_dir(a_file, IDENTITY, False, False)
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(TrainingError, match=r"run.json cannot be read \(.*\); start the run again "
                                            r"with --overwrite"):
        prepare_run_dir(tmp_path, IDENTITY, False, False)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_an_unwritable_folder_is_a_one_line_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ValueError, match=f"--out: cannot write to {locked}: Permission denied"):
            prepare_run_dir(locked, IDENTITY, False, False)
    finally:
        locked.chmod(0o700)
