"""The trainer end to end on tiny synthetic data: exact resume, Ctrl-C, the weights it writes
(loaded by build_tracker, exported by the export command), its files and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import cv2
import numpy as np
import pytest
import torch

import tracker
from tests.conftest import shared_path
from tracker import export
from tracker.train import engine
from tracker.train.cli import main as train_main
from tracker.train.engine import TrainingInterrupted, train
from tracker.train.recipes import default_recipe, resolve_recipe

TINY = {"epochs": 2, "pairs_per_epoch": 4, "batch_size": 2, "workers": 0, "progress": False}


def write_otb(root: Path, names=("Alpha", "Beta"), frames: int = 12, size=(96, 128)) -> Path:
    """An OTB-layout folder: a bright square moving over noise, 1-based ground truth."""
    rng = np.random.default_rng(7)
    height, width = size
    for n, name in enumerate(names):
        folder = root / name / "img"
        folder.mkdir(parents=True)
        lines = []
        for i in range(frames):
            image = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
            x, y = 20 + 3 * i + 5 * n, 30 + 2 * i
            image[y:y + 24, x:x + 30] = (40 + 60 * n, 200, 250)
            cv2.imwrite(str(folder / f"{i + 1:04d}.jpg"), image)
            lines.append(f"{x + 1},{y + 1},30,24")
        (root / name / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture()
def otb(tmp_path: Path) -> Path:
    return write_otb(tmp_path / "otb")


def weights(path: Path) -> Dict[str, torch.Tensor]:
    return {k: v for k, v in torch.load(path, map_location="cpu").items()
            if v.is_floating_point()}


def assert_same_weights(a: Path, b: Path, tolerance: float = 1e-6) -> None:
    """Every tensor of ``a`` equals ``b``'s within ``tolerance`` relative to its largest value
    (at least 1), and every value is finite."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    assert all(bool(torch.isfinite(v).all()) for v in wa.values())
    worst = max(float((wa[k] - wb[k]).abs().max()) / max(1.0, float(wa[k].abs().max()))
                for k in wa)
    assert worst <= tolerance, worst


def test_two_epochs_equal_one_plus_a_resumed_one(otb: Path, tmp_path: Path):
    whole = train("siamfc-alexnet", [f"otb:{otb}"], tmp_path / "whole", **TINY)
    half = dict(TINY, epochs=1)
    train("siamfc-alexnet", [f"otb:{otb}"], tmp_path / "split", **half)
    resumed = train("siamfc-alexnet", [f"otb:{otb}"], tmp_path / "split", resume=True, **TINY)
    assert [e.epoch for e in resumed.epochs] == [0, 1]
    assert_same_weights(whole.model_path, resumed.model_path)
    start = torch.load(tmp_path / "whole" / "checkpoint.pth", map_location="cpu",
                       weights_only=False)
    assert (start["epoch"], start["step"]) == (2, 0)
    moved = weights(whole.model_path)
    assert any(float(v.abs().sum()) > 0 for v in moved.values())


def test_ctrl_c_leaves_a_checkpoint_the_run_resumes_from_exactly(otb, tmp_path, monkeypatch):
    whole = train("siamfc-alexnet", [f"otb:{otb}"], tmp_path / "whole", **TINY)
    original = engine._Run._step
    calls = {"n": 0}

    def interrupt_third(self, *args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(engine._Run, "_step", interrupt_third)
    with pytest.raises(TrainingInterrupted, match=r"epoch 2 at step 1; continue with --resume"):
        train("siamfc-alexnet", [f"otb:{otb}"], tmp_path / "cut", **TINY)
    saved = torch.load(tmp_path / "cut" / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert (saved["epoch"], saved["step"]) == (1, 0)
    monkeypatch.setattr(engine._Run, "_step", original)
    resumed = train("siamfc-alexnet", [f"otb:{otb}"], tmp_path / "cut", resume=True, **TINY)
    assert_same_weights(whole.model_path, resumed.model_path)


def test_the_weights_load_in_a_tracker_and_export(otb: Path, tmp_path: Path):
    result = train("nanotrack-v2", [f"otb:{otb}"], tmp_path / "run",
                   **dict(TINY, epochs=1))
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"model.pth", "checkpoint.pth", "log.jsonl", "curves.png", "run.json"} <= files
    lines = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["step", "step", "epoch"]
    assert all(np.isfinite(line["loss"]) for line in lines)
    frame = cv2.imread(str(otb / "Alpha" / "img" / "0001.jpg"))
    model = tracker.build_tracker("nanotrack-v2", weights=result.model_path)
    model.init(frame, (20, 30, 30, 24))
    box = model.update(frame).box
    assert all(np.isfinite(box))
    assert export.main(["--model", "nanotrack-v2", "--weights", str(result.model_path),
                        "--out", str(tmp_path / "export")]) == 0
    assert (tmp_path / "export" / "search.onnx").stat().st_size > 10000


def run_cli(*argv: str) -> int:
    return train_main(list(argv) + ["--quiet", "--workers", "0"])


@pytest.mark.parametrize("data, message", [
    ("otb:/nowhere/at/all", "/nowhere/at/all does not exist"),
    ("imagenet:/tmp", "imagenet"),
])
def test_bad_data_is_one_line(tmp_path, capsys, data, message):
    assert run_cli("--model", "siamfc-alexnet", "--data", data, "--out", str(tmp_path / "r")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_another_run_in_the_folder_needs_overwrite(otb, tmp_path, capsys):
    args = ["--model", "siamfc-alexnet", "--data", f"otb:{otb}", "--out", str(tmp_path / "r"),
            "--epochs", "1", "--pairs-per-epoch", "2", "--batch-size", "2"]
    assert run_cli(*args) == 0
    capsys.readouterr()
    assert run_cli(*args[:-2], "--batch-size", "1") == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and err.count("\n") == 1
    assert run_cli(*args[:-2], "--batch-size", "1", "--overwrite") == 0


def test_resuming_with_another_recipe_names_the_field(otb, tmp_path, capsys):
    args = ["--model", "siamfc-alexnet", "--data", f"otb:{otb}", "--out", str(tmp_path / "r"),
            "--epochs", "1", "--pairs-per-epoch", "2", "--batch-size", "2"]
    assert run_cli(*args) == 0
    capsys.readouterr()
    assert run_cli(*args, "--resume", "--set", "optim.momentum=0.5") == 2
    err = capsys.readouterr().err
    assert "momentum" in err and err.count("\n") == 1


def test_an_unknown_recipe_key_is_one_line(otb, tmp_path, capsys):
    assert run_cli("--model", "siamfc-alexnet", "--data", f"otb:{otb}", "--out",
                   str(tmp_path / "r"), "--set", "optim.speed=3") == 2
    err = capsys.readouterr().err
    assert "optim has no field 'speed'" in err and "batch_size" in err


def test_undecodable_frames_are_replaced_counted_and_reported(otb, tmp_path, capsys):
    for path in sorted((otb / "Alpha" / "img").glob("*.jpg"))[1:9]:
        path.write_bytes(b"not a jpeg")
    result = train("siamfc-alexnet", [f"otb:{otb}"], tmp_path / "r", note=print,
                   **dict(TINY, epochs=1, pairs_per_epoch=8))
    skipped = result.epochs[0].skipped_frames
    assert skipped > 0
    assert f"{skipped} frame(s) could not be read" in capsys.readouterr().out


def test_mixed_precision_is_one_switch(otb, tmp_path):
    """``optim.amp``: autocast (bfloat16 on CPU; float16 with a gradient scaler on CUDA). From
    the published weights the run trains; bfloat16 keeps about 3 digits, so its loss is within
    15% of the float32 run's and its weights within 1e-2 relative."""
    published = shared_path("weights", "nanotrack", "nanotrackv2.pth")
    options = dict(TINY, epochs=1, init_weights=published)
    exact = train("nanotrack-v2", [f"otb:{otb}"], tmp_path / "fp32", **options)
    mixed = train("nanotrack-v2", [f"otb:{otb}"], tmp_path / "amp",
                  overrides={"optim.amp": "true"}, **options)
    assert np.isfinite(mixed.epochs[0].loss)
    assert abs(mixed.epochs[0].loss - exact.epochs[0].loss) < 0.15 * exact.epochs[0].loss
    a, b = weights(exact.model_path), weights(mixed.model_path)
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert_same_weights(exact.model_path, mixed.model_path, tolerance=1e-2)


def test_siamfc_refuses_negative_pairs():
    with pytest.raises(ValueError, match="pairs.negative_ratio is 0.2 but SiamFC"):
        default_recipe("siamfc-alexnet").with_overrides({"pairs.negative_ratio": "0.2"})


def test_a_recipe_survives_its_dict_and_a_config_file(tmp_path):
    recipe = default_recipe("siamrpnpp-r50").with_overrides({"optim.batch_size": "4"})
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe.to_dict()))
    assert resolve_recipe("siamrpnpp-r50-otb", False, path) == recipe
    assert recipe.optim.backbone_layers == ("layer2", "layer3", "layer4")
    with pytest.raises(ValueError, match="--config is a siamrpn recipe but nanotrack-v2"):
        resolve_recipe("nanotrack-v2", False, path)


def test_fine_tuning_keeps_batchnorm_and_backbone_and_uses_the_final_rate():
    reference = default_recipe("nanotrack-v2")
    tuned = default_recipe("nanotrack-v2", finetune=True)
    assert tuned.optim.freeze_bn and not reference.optim.freeze_bn
    assert tuned.optim.backbone_layers == ()
    assert tuned.schedule.warmup_epochs == 0
    assert reference.optim.backbone_layers == ("",) and reference.optim.backbone_lr_mult == 0.1


LARGE = {"siamrpnpp-r50", "siamrpnpp-r50-otb", "dasiamrpn-big", "siamrpnpp-mobilenetv2"}


@pytest.mark.parametrize("model", [
    pytest.param(m, marks=pytest.mark.slow) if m in LARGE else m for m in tracker.list_models()
])
def test_every_model_takes_training_steps(model, otb, tmp_path):
    """Two steps of one pair from the recipe's initialisation: the loss is finite, the parts
    that learn in the first epoch moved (pysot and NanoTrack: the head; SiamFC: the backbone,
    its head has no weights) and a frozen backbone kept every value, statistics included."""
    recipe = default_recipe(model)
    start = engine.build_model(model)
    engine.initialise(start, recipe, 0)
    result = train(model, [f"otb:{otb}"], tmp_path / "run", epochs=1, pairs_per_epoch=2,
                   batch_size=1, workers=0, progress=False,
                   overrides={} if recipe.family == "siamfc" else {"pairs.negative_ratio": 0.5})
    assert np.isfinite(result.epochs[0].loss) and result.epochs[0].loss > 0
    trained = engine.build_model(model).load_weights(result.model_path)

    def moved(part: str) -> bool:
        old, new = getattr(start, part).state_dict(), getattr(trained, part).state_dict()
        return any(not torch.equal(old[k], new[k]) for k in old)

    frozen = recipe.optim.backbone_train_epoch > 0
    assert moved("backbone") is not frozen
    if frozen:
        assert moved("head")


def test_validation_scores_every_epoch_and_keeps_the_best(otb, tmp_path, capsys):
    """``--val``: the benchmark's success AUC after each epoch; model.pth is the best epoch's
    weights and the curves gain their AUC panel."""
    result = train("nanotrack-v2", [f"otb:{otb}"], tmp_path / "run", val=[f"otb:{otb}"],
                   note=print, **TINY)
    aucs = [e.val_auc for e in result.epochs]
    assert all(0.0 <= a <= 1.0 for a in aucs)
    assert result.best_epoch == int(np.argmax(aucs))
    best = tmp_path / "run" / "val" / f"epoch-{result.best_epoch + 1}.pth"
    assert_same_weights(best, result.model_path, tolerance=0)
    assert f"the best validation AUC ({max(aucs):.3f})" in capsys.readouterr().out
    assert cv2.imread(str(result.plot_path)).shape[0] > 500, "a second panel for the AUC"


def test_an_imagenet_backbone_file_starts_the_backbone(otb, tmp_path, capsys):
    source = engine.build_model("siamrpnpp-alex").backbone.state_dict()
    backbone = {f"module.{k}": v for k, v in source.items()}
    backbone["fc.weight"] = torch.zeros(10, 4)
    path = tmp_path / "alexnet-bn.pth"
    torch.save(backbone, path)
    result = train("siamrpnpp-alex", [f"otb:{otb}"], tmp_path / "run", backbone_weights=path,
                   note=print, **dict(TINY, epochs=1))
    trained = engine.build_model("siamrpnpp-alex").load_weights(result.model_path)
    for key, value in trained.backbone.state_dict().items():
        assert torch.equal(value, source[key]), key
    counted = [k for k in source if not k.endswith("num_batches_tracked")]
    assert f"backbone: {len(counted)} tensors from {path}" in capsys.readouterr().out
