"""Configs: named models, serialization, overrides, registries."""

from __future__ import annotations

import json

import pytest

import tracker
from tracker.config import ModelConfig, SiamRPNParams
from tracker.models.catalog import BACKBONES, HEADS, NECKS
from tracker.registry import Entry, Registry


@pytest.mark.parametrize("name", tracker.list_models())
def test_configs_round_trip_through_plain_dicts(name):
    config = tracker.get_config(name)
    data = json.loads(json.dumps(config.to_dict()))
    assert ModelConfig.from_dict(data) == config


def test_published_hyper_parameters():
    vot = tracker.get_config("dasiamrpn-vot").tracking
    assert (vot.lr, vot.window_influence, vot.penalty_k, vot.instance_size) == (0.45, 0.44, 0.04, 271)
    r50 = tracker.get_config("siamrpnpp-r50-otb").tracking
    assert (r50.penalty_k, r50.window_influence, r50.lr, r50.score_size()) == (0.24, 0.5, 0.25, 25)
    assert tracker.get_config("siamrpnpp-alex").tracking.score_size() == 21
    big = tracker.get_config("dasiamrpn-big").tracking
    assert (big.score_size(), big.score_size(287)) == (19, 21)
    assert tracker.get_config("nanotrack-v3").tracking.score_size == 15


def test_overrides_are_checked_and_leave_the_original_alone():
    config = tracker.get_config("siamrpnpp-alex")
    changed = config.with_tracking(window_influence=0.3)
    assert changed.tracking.window_influence == 0.3 and config.tracking.window_influence == 0.4
    with pytest.raises(ValueError, match="unknown hyper-parameter"):
        config.with_tracking(scale_lr=0.5)
    with pytest.raises(ValueError, match="lost_threshold must be in"):
        config.with_tracking(lost_threshold=-1)
    with pytest.raises(ValueError, match="convention must be one of"):
        SiamRPNParams(convention="opencv")


def test_family_and_params_must_agree():
    config = tracker.get_config("nanotrack-v2")
    with pytest.raises(TypeError, match="needs NanoTrackParams"):
        ModelConfig(name="x", family="nanotrack", network=config.network, tracking=SiamRPNParams())
    with pytest.raises(ValueError, match="not a valid model config"):
        ModelConfig.from_dict({"name": "x"})


def test_registries_name_their_choices():
    assert set(BACKBONES.names()) == {
        "alexnet", "alexnet_legacy", "alexnet_dasiamrpn", "resnet50", "mobilenetv2", "mobilenetv3_small"}
    assert set(NECKS.names()) == {"adjust", "adjust_all"}
    assert "nanotrack_v3" in HEADS and "multi_rpn" in HEADS
    with pytest.raises(tracker.UnknownNameError, match="unknown backbone 'vgg'; known: alexnet"):
        BACKBONES.build("vgg")
    variants = Registry("thing", {"a": Entry("builtins:dict", {"size": 1})})
    assert variants.build("a") == {"size": 1}
    assert variants.build("a", size=2) == {"size": 2}


def test_importing_the_package_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, tracker; tracker.list_models(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False"
