"""Configs: named models, serialization, overrides, registries."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

import tracker
from tests.conftest import shared_path
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


PYSOT_FIXTURES = {
    "siamrpnpp-alex": "siamrpn_alex_dwxcorr",
    "siamrpnpp-mobilenetv2": "siamrpn_mobilev2_l234_dwxcorr",
    "siamrpnpp-r50": "siamrpn_r50_l234_dwxcorr",
    "siamrpnpp-r50-otb": "siamrpn_r50_l234_dwxcorr_otb",
}


@pytest.mark.parametrize("name", sorted(PYSOT_FIXTURES))
def test_pysot_models_use_the_published_config(name):
    published = json.loads(shared_path("fixtures", "pysot", PYSOT_FIXTURES[name], "config.json")
                           .read_text())
    config = tracker.get_config(name)
    params, track, anchor = config.tracking, published["TRACK"], published["ANCHOR"]
    assert (params.exemplar_size, params.instance_size, params.base_size, params.context_amount,
            params.penalty_k, params.window_influence, params.lr) == (
        track["EXEMPLAR_SIZE"], track["INSTANCE_SIZE"], track["BASE_SIZE"],
        track["CONTEXT_AMOUNT"], track["PENALTY_K"], track["WINDOW_INFLUENCE"], track["LR"])
    assert (params.anchor_stride, list(params.anchor_ratios), list(params.anchor_scales)) == (
        anchor["STRIDE"], anchor["RATIOS"], anchor["SCALES"])
    assert params.score_size() == published["derived"]["score_size"]
    network = config.to_dict()["network"]
    for key, value in published["BACKBONE"]["KWARGS"].items():
        assert network["backbone_kwargs"][key] == value, key
    if published["ADJUST"]["ADJUST"]:
        for key, value in published["ADJUST"]["KWARGS"].items():
            assert network["neck_kwargs"][key] == value, key
        assert network["neck_kwargs"]["center_size"] == published["ADJUST"]["center_size"]
    else:
        assert network["neck"] is None
    for key, value in published["RPN"]["KWARGS"].items():
        assert network["head_kwargs"][key] == value, key


def test_siamfc_uses_the_published_config():
    published = json.loads(shared_path("fixtures", "siamfc", "config.json").read_text())["params"]
    config = tracker.get_config("siamfc-alexnet")
    params = config.tracking
    assert (params.exemplar_size, params.instance_size, params.context_amount, params.scale_num,
            params.scale_step, params.scale_lr, params.scale_penalty, params.window_influence,
            params.response_size, params.response_upsample, params.total_stride) == tuple(
        published[key] for key in ("exemplar_sz", "instance_sz", "context", "scale_num",
                                   "scale_step", "scale_lr", "scale_penalty", "window_influence",
                                   "response_sz", "response_up", "total_stride"))
    assert config.network.head_kwargs["out_scale"] == published["out_scale"]


# SiamRPNvot has no fixture folder; its README states the published values.
DASIAMRPN_VOT = {"lr": 0.45, "window_influence": 0.44, "penalty_k": 0.04, "instance_size": 271,
                 "adaptive": False}


@pytest.mark.parametrize("name, folder", [("dasiamrpn-otb", "dasiamrpn_otb"),
                                          ("dasiamrpn-vot", "dasiamrpn_otb"),
                                          ("dasiamrpn-big", "dasiamrpn_big")])
def test_dasiamrpn_models_use_the_published_config(name, folder):
    published = json.loads(shared_path("fixtures", "dasiamrpn", folder, "config.json").read_text())
    if name == "dasiamrpn-vot":
        published.update(DASIAMRPN_VOT)
    config = tracker.get_config(name)
    params = config.tracking
    assert (params.exemplar_size, params.instance_size, params.anchor_stride,
            params.context_amount, list(params.anchor_ratios), list(params.anchor_scales),
            params.penalty_k, params.window_influence, params.lr) == tuple(
        published[key] for key in ("exemplar_size", "instance_size", "total_stride",
                                   "context_amount", "ratios", "scales", "penalty_k",
                                   "window_influence", "lr"))
    assert (params.adaptive_instance_size is not None) == published["adaptive"]
    assert config.network.head_kwargs["feature_channels"] == published["feature_out"]
    assert config.network.head_kwargs["anchor_num"] == published["anchor"]


def _yaml_section(text: str, section: str) -> dict:
    """``KEY: number`` lines of one top-level section of NanoTrack's flat config files."""
    values, inside = {}, False
    for line in text.splitlines():
        if line and not line[0].isspace():
            inside = line.split(":")[0].strip() == section
        elif inside:
            match = re.match(r"\s+([A-Z_]+):\s*([-\d.]+)\s*(#.*)?$", line)
            if match:
                values[match.group(1)] = float(match.group(2))
    return values


@pytest.mark.parametrize("version", [1, 2, 3])
def test_nanotrack_models_use_the_published_config(version):
    text = shared_path("weights", "nanotrack", f"configv{version}.yaml").read_text()
    track, point = (_yaml_section(text, s) for s in ("TRACK", "POINT"))
    params = tracker.get_config(f"nanotrack-v{version}").tracking
    assert (params.penalty_k, params.window_influence, params.lr, params.exemplar_size,
            params.instance_size, params.context_amount, params.point_stride) == (
        track["PENALTY_K"], track["WINDOW_INFLUENCE"], track["LR"], track["EXEMPLAR_SIZE"],
        track["INSTANCE_SIZE"], track["CONTEXT_AMOUNT"], point["STRIDE"])
    # TRACK.OUTPUT_SIZE defaults to 16 where the file does not set it (fixture README, 4).
    assert params.score_size == track.get("OUTPUT_SIZE", 16)


def test_configs_are_immutable_and_hashable():
    config = tracker.get_config("siamrpnpp-mobilenetv2")
    with pytest.raises(TypeError):
        config.network.backbone_kwargs["width_mult"] = 2.0
    with pytest.raises(AttributeError):
        config.network.neck_kwargs["in_channels"].append(1)
    assert tracker.get_config("siamrpnpp-mobilenetv2") is config
    assert config.network.backbone_kwargs == {"used_layers": (3, 5, 7), "width_mult": 1.4}
    assert hash(config) == hash(ModelConfig.from_dict(config.to_dict()))
    with pytest.raises(ValueError, match="head_kwargs must be a mapping, got list"):
        dataclasses.replace(config.network, head_kwargs=[1])


@pytest.mark.parametrize("override, message", [
    ({"penalty_k": "a"}, r"penalty_k must be a finite number >= 0, got 'a' \(str\)"),
    ({"min_size": -5}, r"min_size must be >= 0, got -5.0"),
    ({"score_size": True}, r"score_size must be an int > 0, got True \(bool\)"),
    ({"score_size": 15.0}, r"score_size must be an int > 0, got 15.0 \(float\)"),
    ({"lr": float("nan")}, r"lr must be a finite number in \[0, 1\], got nan"),
    ({"window_influence": 1.5}, r"window_influence must be in \[0, 1\], got 1.5"),
    ({"instance_size": 100}, r"instance_size must be at least exemplar_size, got 100 and 127"),
    ({"context_amount": 0}, r"context_amount must be > 0, got 0.0"),
])
def test_every_tracking_override_is_type_and_range_checked(override, message):
    with pytest.raises(ValueError, match=message):
        tracker.get_config("nanotrack-v2").with_tracking(**override)


@pytest.mark.parametrize("name", tracker.list_models())
def test_every_hyper_parameter_of_every_model_has_a_declared_range(name):
    params = tracker.get_config(name).tracking
    for spec in dataclasses.fields(params):
        if spec.name != "convention":
            params._limit(spec.name)
    rpn = tracker.get_config("siamrpnpp-alex")
    with pytest.raises(ValueError, match=r"anchor_ratios must be a non-empty sequence"):
        rpn.with_tracking(anchor_ratios=())
    with pytest.raises(ValueError, match=r"anchor_scales must be > 0, got -8.0"):
        rpn.with_tracking(anchor_scales=(-8,))
    assert rpn.with_tracking(lr=1).tracking.lr == 1.0


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
