"""--backbone-weights: ImageNet backbone checkpoints in the references' layouts."""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Dict

import pytest
import torch

from tracker.errors import CheckpointError
from tracker.models.network import build_model
from tracker.train.pretrained import BackboneLoad, load_backbone_weights


def _random_like(state: Dict[str, torch.Tensor], seed: int) -> "OrderedDict[str, torch.Tensor]":
    """The backbone's tensors with new values (positive, so BatchNorm variances stay valid)."""
    generator = torch.Generator().manual_seed(seed)
    return OrderedDict(
        (key, torch.rand(value.shape, generator=generator) + 0.5 if value.is_floating_point()
         else value.clone())
        for key, value in state.items()
    )


def _without_counters(state: Dict[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    return OrderedDict((k, v) for k, v in state.items() if not k.endswith("num_batches_tracked"))


def _assert_loaded(network, expected: Dict[str, torch.Tensor]) -> None:
    actual = network.backbone.state_dict()
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


def test_dataparallel_file_with_classifier_keys_loads_into_siamfc_alexnet(tmp_path):
    network = build_model("siamfc-alexnet")
    weights = _random_like(network.backbone.state_dict(), seed=1)
    file_state = OrderedDict((f"module.{k}", v) for k, v in weights.items())
    file_state["module.fc.weight"] = torch.zeros(10, 256)
    file_state["module.fc.bias"] = torch.zeros(10)
    path = tmp_path / "alexnet.pth"
    torch.save(file_state, path)

    result = load_backbone_weights(network, path)

    counted = len(_without_counters(weights))
    assert counted == 26
    assert result == BackboneLoad(path=str(path), loaded=26, missing=(),
                                  ignored=("fc.weight", "fc.bias"))
    _assert_loaded(network, weights)
    assert result.summary() == (f"backbone weights from {path}: 26 tensors loaded, "
                                "2 of the file ignored (fc.weight, fc.bias)")


def test_pysot_training_alexnet_blocks_load_into_the_published_features_layout(tmp_path):
    """pysot's AlexNet recipes train ``alexnet`` (``layer1`` ... ``layer5``) from
    alexnet-bn.pth; the published siamrpn_alex model is ``features.0`` ... ``features.15``."""
    network = build_model("siamrpnpp-alex")
    weights = _without_counters(_random_like(network.backbone.state_dict(), seed=2))
    blocks = {0: "layer1.0", 1: "layer1.1", 4: "layer2.0", 5: "layer2.1", 8: "layer3.0",
              9: "layer3.1", 11: "layer4.0", 12: "layer4.1", 14: "layer5.0", 15: "layer5.1"}
    file_state = OrderedDict()
    for key, value in weights.items():
        index, rest = re.fullmatch(r"features\.(\d+)\.(.*)", key).groups()
        file_state[f"{blocks[int(index)]}.{rest}"] = value
    path = tmp_path / "alexnet-bn.pth"
    torch.save({"state_dict": file_state, "epoch": torch.tensor(90)}, path)

    result = load_backbone_weights(network, path)

    assert (result.loaded, result.missing, result.ignored) == (30, (), ())
    _assert_loaded(network, weights)
    assert torch.equal(network.backbone.state_dict()["features.11.weight"],
                       file_state["layer4.0.weight"])


def test_a_whole_tracker_checkpoint_gives_its_backbone(tmp_path):
    donor = build_model("siamrpnpp-alex")
    donor.backbone.load_state_dict(_random_like(donor.backbone.state_dict(), seed=3))
    path = tmp_path / "model.pth"
    torch.save(donor.state_dict(), path)
    network = build_model("siamrpnpp-alex")

    result = load_backbone_weights(network, path)

    assert result.loaded == 30 and result.missing == ()
    assert result.ignored and all(key.startswith("rpn_head.") for key in result.ignored)
    _assert_loaded(network, donor.backbone.state_dict())


def test_dasiamrpn_published_prefix_is_recognised(tmp_path):
    network = build_model("dasiamrpn-otb")
    weights = _without_counters(_random_like(network.backbone.state_dict(), seed=4))
    path = tmp_path / "SiamRPNOTB.model"
    torch.save(OrderedDict((k.replace("features.", "featureExtract.", 1), v)
                           for k, v in weights.items()), path)

    assert load_backbone_weights(network, path).loaded == 30
    _assert_loaded(network, weights)


def test_mobilenetv3_imagenet_file_loads_the_truncated_nanotrack_backbone(tmp_path):
    """mobilenetv3_small_1.0.pth holds blocks past NanoTrack's cut and the classifier."""
    network = build_model("nanotrack-v2")
    weights = _random_like(network.backbone.state_dict(), seed=5)
    file_state = OrderedDict(weights)
    extra = {"features.9.conv.0.weight": torch.zeros(288, 48, 1, 1),
             "conv.0.weight": torch.zeros(576, 96, 1, 1),
             "classifier.0.weight": torch.zeros(1024, 576)}
    file_state.update(extra)
    path = tmp_path / "mobilenetv3_small_1.0.pth"
    torch.save(file_state, path)

    result = load_backbone_weights(network, path)

    assert result.loaded == len(_without_counters(weights)) == 144
    assert result.missing == ()
    assert result.ignored == tuple(extra)
    _assert_loaded(network, weights)


def test_tensors_the_file_lacks_keep_their_values_and_are_reported(tmp_path):
    network = build_model("nanotrack-v2")
    before = {k: v.clone() for k, v in network.backbone.state_dict().items()}
    weights = _without_counters(_random_like(before, seed=6))
    dropped = [k for k in weights if k.startswith(("features.7.", "features.8."))]
    assert 0 < len(dropped) < len(weights) / 2
    path = tmp_path / "partial.pth"
    torch.save(OrderedDict((k, v) for k, v in weights.items() if k not in dropped), path)

    result = load_backbone_weights(network, path)

    assert result.missing == tuple(dropped)
    assert result.loaded == 144 - len(dropped)
    after = network.backbone.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in dropped)
    assert torch.equal(after["features.0.0.weight"], weights["features.0.0.weight"])


def test_fewer_than_half_found_is_the_wrong_file(tmp_path):
    network = build_model("siamfc-alexnet")
    unrelated = build_model("nanotrack-v2").backbone.state_dict()
    path = tmp_path / "mobilenet.pth"
    torch.save(unrelated, path)
    before = {k: v.clone() for k, v in network.backbone.state_dict().items()}

    with pytest.raises(CheckpointError) as error:
        load_backbone_weights(network, path)

    message = str(error.value)
    assert message.startswith(f"{path} holds 0 of the 26 tensors of the 'alexnet' backbone, "
                              "fewer than half")
    assert "file keys: features.0.0.weight, features.0.1.weight" in message
    assert "backbone keys: conv1.0.weight, conv1.0.bias" in message
    assert all(torch.equal(v, before[k]) for k, v in network.backbone.state_dict().items())


def test_half_of_the_backbone_is_enough(tmp_path):
    network = build_model("siamfc-alexnet")
    weights = list(_without_counters(_random_like(network.backbone.state_dict(), seed=7)).items())
    torch.save(OrderedDict(weights[:13]), tmp_path / "half.pth")
    torch.save(OrderedDict(weights[:12]), tmp_path / "less.pth")

    assert load_backbone_weights(network, tmp_path / "half.pth").loaded == 13
    with pytest.raises(CheckpointError, match="holds 12 of the 26 tensors"):
        load_backbone_weights(network, tmp_path / "less.pth")


def test_a_shape_mismatch_names_the_key_and_both_shapes(tmp_path):
    network = build_model("siamrpnpp-alex")
    weights = _random_like(network.backbone.state_dict(), seed=8)
    weights["features.4.weight"] = torch.rand(256, 48, 5, 5)
    path = tmp_path / "grouped.pth"
    torch.save(OrderedDict((f"module.{k}", v) for k, v in weights.items()), path)

    with pytest.raises(CheckpointError) as error:
        load_backbone_weights(network, path)

    assert str(error.value) == (f"{path}: tensor 'features.4.weight' has shape (256, 48, 5, 5) "
                                "in the file but (256, 96, 5, 5) in the 'alexnet_legacy' backbone")


def test_resnet50_imagenet_file(tmp_path):
    network = build_model("siamrpnpp-r50")
    weights = _without_counters(_random_like(network.backbone.state_dict(), seed=9))
    file_state = OrderedDict(weights)
    file_state["fc.weight"] = torch.zeros(4, 2048)
    file_state["fc.bias"] = torch.zeros(4)
    path = tmp_path / "resnet50.model"
    torch.save(file_state, path)

    result = load_backbone_weights(network, path)

    assert (result.loaded, result.missing, result.ignored) == (265, (), ("fc.weight", "fc.bias"))
    _assert_loaded(network, weights)


def test_damaged_or_absent_files_and_wrong_arguments(tmp_path):
    network = build_model("siamfc-alexnet")
    weights = _random_like(network.backbone.state_dict(), seed=10)
    weights["conv3.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(weights, tmp_path / "nan.pth")

    with pytest.raises(CheckpointError, match=r"tensor 'conv3.0.weight' holds 1 NaN"):
        load_backbone_weights(network, tmp_path / "nan.pth")
    with pytest.raises(FileNotFoundError, match="checkpoint file not found: .*absent.pth"):
        load_backbone_weights(network, tmp_path / "absent.pth")
    with pytest.raises(TypeError, match="network must be a SiameseNetwork, got Sequential"):
        load_backbone_weights(torch.nn.Sequential(), tmp_path / "nan.pth")
