"""``SiameseNetwork.load_weights``: the file layouts it accepts and the files it refuses."""

from __future__ import annotations

import os
import pickle
import re
from collections import OrderedDict

import numpy as np
import pytest
import torch

from tests.conftest import shared_path
from tracker import CheckpointError, build_tracker
from tracker.models.checkpoint import check_values, read_checkpoint
from tracker.models.network import build_model

SIAMFC_CHECKPOINT = ("fixtures", "siamfc", "checkpoint.pth")
ALEX_CHECKPOINT = ("fixtures", "pysot", "siamrpn_alex_dwxcorr", "checkpoint.pth")


@pytest.fixture(scope="module")
def siamfc_state():
    """siamfc's fixture checkpoint: a plain state dict of float16 tensors."""
    state = torch.load(shared_path(*SIAMFC_CHECKPOINT), map_location="cpu", weights_only=True)
    assert state["backbone.conv1.0.weight"].dtype == torch.float16
    return state


def _assert_holds(net, state):
    """Every tensor of ``net`` equals ``state``'s value, in the network's own dtype."""
    loaded = net.state_dict()
    assert list(loaded) == list(state)
    for key, value in state.items():
        counter = key.endswith("num_batches_tracked")
        assert loaded[key].dtype == (torch.int64 if counter else torch.float32)
        torch.testing.assert_close(loaded[key], value.to(loaded[key].dtype), rtol=0, atol=0)


def test_plain_float16_checkpoint_file_is_cast_to_float32(siamfc_state):
    net = build_model("siamfc-alexnet").load_weights(shared_path(*SIAMFC_CHECKPOINT))
    _assert_holds(net, siamfc_state)


def test_state_dict_entry_and_module_prefix_are_accepted(siamfc_state, tmp_path):
    prefixed = OrderedDict((f"module.{k}", v) for k, v in siamfc_state.items())
    path = tmp_path / "wrapped.pth"
    torch.save({"epoch": 3, "state_dict": prefixed}, path)
    _assert_holds(build_model("siamfc-alexnet").load_weights(path), siamfc_state)
    for source in ({"state_dict": siamfc_state}, prefixed):
        _assert_holds(build_model("siamfc-alexnet").load_weights(source), siamfc_state)


def test_pysot_checkpoint_file_is_accepted():
    path = shared_path(*ALEX_CHECKPOINT)
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    _assert_holds(build_model("siamrpnpp-alex").load_weights(path), state)


def test_checkpoints_without_batch_counters_load(siamfc_state):
    """Checkpoints saved by old torch versions have no ``num_batches_tracked`` buffers."""
    state = {k: v for k, v in siamfc_state.items() if not k.endswith("num_batches_tracked")}
    assert len(state) == len(siamfc_state) - 4
    net = build_model("siamfc-alexnet").load_weights(state)
    expected = state["backbone.conv3.1.running_var"].float()
    torch.testing.assert_close(net.backbone.conv3[1].running_var, expected)


def test_another_models_checkpoint_is_refused_with_the_differences():
    path = shared_path(*ALEX_CHECKPOINT)
    with pytest.raises(CheckpointError) as error:
        build_model("siamfc-alexnet").load_weights(path)
    message = str(error.value)
    assert message.startswith(f"{path} does not fit this model: ")
    assert "26 missing keys: backbone.conv1.0.weight, backbone.conv1.0.bias," in message
    assert "75 unexpected keys: backbone.features.0.weight," in message
    assert "... (16 more)" in message and "... (65 more)" in message


def test_shape_mismatches_are_listed(siamfc_state, tmp_path):
    state = OrderedDict(siamfc_state)
    state["backbone.conv2.0.weight"] = torch.zeros(256, 96, 5, 5)
    state["backbone.conv5.0.bias"] = torch.zeros(128)
    path = tmp_path / "ungrouped.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=re.escape(
        "2 shape mismatches (file vs model): backbone.conv2.0.weight (256, 96, 5, 5) vs "
        "(256, 48, 5, 5), backbone.conv5.0.bias (128,) vs (256,)"
    )):
        build_model("siamfc-alexnet").load_weights(path)


@pytest.mark.parametrize("content", ["garbage", "truncated", "empty"])
def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path, content):
    whole = shared_path(*SIAMFC_CHECKPOINT).read_bytes()
    data = {
        "garbage": b"\x89PNG\r\n\x1a\n not a checkpoint at all" * 10,
        "truncated": whole[:len(whole) // 2],
        "empty": b"",
    }[content]
    path = tmp_path / "weights.pth"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=f"^{re.escape(str(path))} is not a"):
        build_model("siamfc-alexnet").load_weights(path)


def test_a_missing_file_is_reported():
    with pytest.raises(FileNotFoundError, match="checkpoint file not found: .*nowhere.pth"):
        build_model("siamfc-alexnet").load_weights("nowhere.pth")


def test_a_dict_of_non_tensors_is_refused():
    with pytest.raises(CheckpointError, match="entries epoch are not tensors"):
        build_model("siamfc-alexnet").load_weights({"epoch": 3, "w": torch.zeros(1)})


class _Payload:
    """Unpickling this object runs a shell command."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"echo pwned > {self.marker}",)


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_a_pickle_with_a_code_payload_is_refused_without_running_it(tmp_path, writer):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pth"
    content = {"state_dict": {"backbone.conv1.0.weight": _Payload(str(marker))}}
    if writer == "torch.save":
        torch.save(content, path)
    else:
        with open(path, "wb") as file:
            pickle.dump(content, file, protocol=2)
    with pytest.raises(CheckpointError, match="is not a plain weights file and was refused"):
        build_model("siamfc-alexnet").load_weights(path)
    assert not marker.exists()


def test_numpy_scalars_in_the_metadata_are_allowed_and_nothing_broader(siamfc_state, tmp_path):
    """NanoTrack's files carry a numpy float64 beside the state dict; a file re-saved under
    numpy 2 names it by numpy 2's module path. A numpy array is already too much."""
    scalar = tmp_path / "scalar.pth"
    torch.save({"state_dict": siamfc_state, "best_score": np.float64(0.71)}, scalar)
    assert b"numpy._core.multiarray" in scalar.read_bytes()
    _assert_holds(build_model("siamfc-alexnet").load_weights(scalar), siamfc_state)
    array = tmp_path / "array.pth"
    torch.save({"state_dict": siamfc_state, "history": np.zeros(3)}, array)
    with pytest.raises(CheckpointError, match="is not a plain weights file and was refused"):
        build_model("siamfc-alexnet").load_weights(array)



@pytest.fixture(scope="module")
def nanotrack_state():
    """The real nanotrack-v2 checkpoint's state dict."""
    return read_checkpoint(shared_path("weights", "nanotrack", "nanotrackv2.pth"))


@pytest.mark.parametrize(
    "key, value, problem",
    [
        ("neck.downsample.0.weight", float("nan"), "holds 1 NaN or infinite value(s) of"),
        ("backbone.features.0.0.weight", float("-inf"), "holds 1 NaN or infinite value(s) of"),
        (
            "backbone.features.1.conv.1.running_var", -0.5,
            "(BatchNorm variances) holds 1 negative value(s) of",
        ),
    ],
)
def test_damaged_values_are_refused_naming_file_and_tensor(nanotrack_state, tmp_path, key, value, problem):
    state = OrderedDict((k, v.clone()) for k, v in nanotrack_state.items())
    state[key].view(-1)[3] = value
    path = tmp_path / "damaged.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as caught:
        build_tracker("nanotrack-v2", weights=path)
    assert str(caught.value) == (
        f"{path}: tensor {key!r} {problem} {state[key].numel()}; the file is damaged "
        "(download it again)"
    )


def test_intact_nanotrack_checkpoint_passes_the_value_check(nanotrack_state):
    check_values(nanotrack_state, "nanotrackv2.pth")
    assert sum(k.endswith("running_var") for k in nanotrack_state) == 41
