"""siamfc-pytorch's SiamFC (AlexNetV1 + scaled cross-correlation) against its fixture outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import shared_path
from tests.parity import assert_layout, assert_parity
from tracker.models.backbones.alexnet import AlexNetV1
from tracker.models.network import build_model

SIAMFC = ("fixtures", "siamfc")


@pytest.fixture(scope="module")
def net():
    return build_model("siamfc-alexnet").load_weights(shared_path(*SIAMFC, "checkpoint.pth"))


@pytest.fixture(scope="module")
def pairs():
    return np.load(shared_path(*SIAMFC, "net.npz"))


def _as_network_input(crops: np.ndarray, layout: str) -> torch.Tensor:
    """NCHW float tensor of ``crops`` (NCHW array) in the given memory layout.

    siamfc-pytorch permutes HWC crops without copying, so the reference ran on
    channels-last strides; CPU convolutions round differently on the two layouts.
    """
    if layout == "channels_last":
        channels_last = np.ascontiguousarray(crops.transpose(0, 2, 3, 1))
        return torch.from_numpy(channels_last).permute(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(crops))


def test_state_dict_layout_equals_siamfc_pytorch():
    assert_layout(build_model("siamfc-alexnet"), shared_path(*SIAMFC, "keys.json"))


@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
@pytest.mark.parametrize("pair", range(6))
def test_response_matches_siamfc_pytorch(net, pairs, pair, layout):
    """One template kernel against the batch of 3 search scales, in one call."""
    kernel = net.template(_as_network_input(pairs["z"][pair:pair + 1], layout))
    out = net.track(kernel, _as_network_input(pairs["x"][pair], layout))
    assert list(out) == ["response"]
    assert out["response"].shape == (3, 1, 17, 17)
    assert_parity(out["response"][:, 0], pairs["response"][pair])


def test_alexnet_v1_feature_sizes_and_batchnorm_eps():
    backbone = AlexNetV1().eval()
    with torch.no_grad():
        assert backbone(torch.zeros(1, 3, 127, 127)).shape == (1, 256, 6, 6)
        assert backbone(torch.zeros(2, 3, 255, 255)).shape == (2, 256, 22, 22)
    norms = [m for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 4 and all(m.eps == 1e-6 for m in norms)
    assert [backbone.get_submodule(f"conv{i}.0").groups for i in range(1, 6)] == [1, 2, 1, 2, 2]
