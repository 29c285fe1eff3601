"""The learning rate of every epoch against the references' schedulers."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from tests.conftest import shared_path
from tracker.train.schedules import ScheduleSettings, learning_rate

REFERENCES = {
    "pysot siamrpn_alex_dwxcorr_16gpu": ScheduleSettings.pysot_alex,
    "pysot siamrpn_r50_l234_dwxcorr_8gpu": ScheduleSettings.pysot_r50,
    "nanotrack configv2": ScheduleSettings.nanotrack,
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_every_epoch_matches_the_reference_scheduler(name):
    expected = json.loads(shared_path("fixtures", "training", "lr_schedules.json").read_text())
    reference = expected["schedules"][name]
    settings = REFERENCES[name]()
    assert settings.epochs == len(reference)
    ours = [learning_rate(settings, epoch) for epoch in range(settings.epochs)]
    assert ours == pytest.approx(reference, rel=1e-5, abs=0)


def test_siamfc_decays_like_exponential_lr_stepped_once_per_epoch():
    """siamfc-pytorch: ExponentialLR(gamma = (1e-5 / 1e-2) ** (1 / 50)), ``step(epoch=e)``
    before epoch e. Compared: epoch 0 is 1e-2, epoch 49 is 1e-2 * 1e-3 ** (49 / 50) (about
    1.148e-5; 1e-5 itself would be epoch 50), and every epoch equals torch's ExponentialLR."""
    settings = ScheduleSettings.siamfc()
    assert settings.epochs == 50
    assert learning_rate(settings, 0) == pytest.approx(1e-2, rel=1e-12)
    assert learning_rate(settings, 49) == pytest.approx(1e-2 * 1e-3 ** (49 / 50), rel=1e-12)
    assert learning_rate(settings, 49) == pytest.approx(1.1481536e-5, rel=1e-7)

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-2)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, (1e-5 / 1e-2) ** (1 / 50))
    torch_lrs = []
    for _ in range(50):
        torch_lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert [learning_rate(settings, e) for e in range(50)] == pytest.approx(torch_lrs, rel=1e-10)


def test_warmup_step_holds_the_rate_for_step_epochs():
    settings = ScheduleSettings(epochs=10, warmup_epochs=4, warmup_step=2,
                                warmup_lr_start=0.001, warmup_lr_end=0.004,
                                lr_start=0.01, lr_end=0.001)
    lrs = [learning_rate(settings, e) for e in range(10)]
    # 4 // 2 = 2 steps from 0.001 to 0.004: factor 2 every 2 epochs.
    assert lrs[:4] == pytest.approx([0.001, 0.001, 0.002, 0.002], rel=1e-12)
    # log schedule over the 6 remaining epochs, both ends included.
    assert lrs[4] == pytest.approx(0.01, rel=1e-12)
    assert lrs[9] == pytest.approx(0.001, rel=1e-12)
    assert lrs[5] == pytest.approx(0.01 * 0.1 ** (1 / 5), rel=1e-12)


def test_a_one_epoch_log_schedule_is_its_start_rate():
    settings = ScheduleSettings(epochs=1, warmup_epochs=0, lr_start=0.02, lr_end=0.001)
    assert learning_rate(settings, 0) == 0.02


@pytest.mark.parametrize("epoch", [-1, 50, 1.0, True])
def test_an_epoch_outside_the_run_is_refused(epoch):
    with pytest.raises(ValueError, match=r"epoch must be an int in \[0, 50\), got"):
        learning_rate(ScheduleSettings.siamfc(), epoch)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"kind": "cos"}, "kind must be one of log, exponential, got 'cos'"),
        ({"epochs": 0}, "epochs must be > 0, got 0"),
        ({"lr_start": -0.1}, "lr_start must be > 0, got -0.1"),
        ({"lr_end": float("nan")}, "lr_end must be a finite number > 0"),
        ({"warmup_epochs": 50}, r"warmup_epochs must be less than epochs \(50\), got 50"),
        ({"warmup_step": 6}, r"warmup_step must be at most warmup_epochs \(5\), got 6"),
        ({"epochs": 2.5}, "epochs must be an int > 0, got 2.5"),
    ],
)
def test_bad_settings_name_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(ScheduleSettings.pysot_alex(), **changes)


def test_settings_are_plain_values():
    settings = ScheduleSettings.nanotrack()
    as_dict = dataclasses.asdict(settings)
    assert as_dict == {
        "epochs": 50, "kind": "log", "lr_start": 0.005, "lr_end": 0.0005, "warmup_epochs": 5,
        "warmup_lr_start": 0.001, "warmup_lr_end": 0.005, "warmup_step": 1,
    }
    assert ScheduleSettings(**as_dict) == settings
    assert isinstance(ScheduleSettings(lr_start=1).lr_start, float)


@pytest.mark.parametrize("reference, final", [("siamfc", 1e-2 * 1e-3 ** (49 / 50)),
                                              ("pysot_alex", 0.0005)])
def test_finetuning_runs_at_the_final_rate_without_warmup(reference, final):
    settings = getattr(ScheduleSettings, reference)().finetune()
    assert settings.warmup_epochs == 0 and settings.epochs == 50
    assert [learning_rate(settings, e) for e in (0, 17, 49)] == pytest.approx([final] * 3,
                                                                             rel=1e-12)


def test_another_epoch_count_keeps_the_warmup_and_decays_over_the_rest():
    settings = ScheduleSettings.pysot_r50().with_epochs(8)
    assert (settings.epochs, settings.warmup_epochs) == (8, 5)
    lrs = [learning_rate(settings, e) for e in range(8)]
    assert lrs[:5] == pytest.approx([0.001 * 5 ** (e / 5) for e in range(5)], rel=1e-12)
    assert lrs[5:] == pytest.approx([0.005, 0.005 * 0.1 ** 0.5, 0.0005], rel=1e-12)


@pytest.mark.parametrize("epochs, lrs", [(2, [0.001, 0.005]), (1, [0.005])])
def test_a_run_shorter_than_the_warmup_keeps_one_decay_epoch(epochs, lrs):
    settings = ScheduleSettings.nanotrack().with_epochs(epochs)
    assert settings.warmup_epochs == epochs - 1
    assert [learning_rate(settings, e) for e in range(epochs)] == pytest.approx(lrs, rel=1e-12)


def test_with_epochs_refuses_a_non_positive_count():
    with pytest.raises(ValueError, match="epochs must be an int > 0, got 0"):
        ScheduleSettings.siamfc().with_epochs(0)
