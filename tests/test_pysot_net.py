"""pysot's siamrpn_alex_dwxcorr (AlexNetLegacy + DepthwiseRPN) and MultiRPN's fusion."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import shared_path
from tests.parity import assert_layout, assert_parity
from tracker.models.backbones.alexnet import AlexNetLegacy
from tracker.models.heads.rpn import MultiRPN
from tracker.models.network import build_model

ALEX = ("fixtures", "pysot", "siamrpn_alex_dwxcorr")


@pytest.fixture(scope="module")
def net():
    return build_model("siamrpnpp-alex").load_weights(shared_path(*ALEX, "checkpoint.pth"))


@pytest.fixture(scope="module")
def pairs():
    return np.load(shared_path(*ALEX, "net.npz"))


def test_state_dict_layout_equals_pysot():
    assert_layout(build_model("siamrpnpp-alex"), shared_path(*ALEX, "keys.json"))


@pytest.mark.parametrize("pair", range(6))
def test_outputs_match_pysot(net, pairs, pair):
    kernel = net.template(torch.from_numpy(pairs["z"][pair:pair + 1]))
    out = net.track(kernel, torch.from_numpy(pairs["x"][pair:pair + 1]))
    assert out["cls"].shape == (1, 10, 21, 21) and out["loc"].shape == (1, 20, 21, 21)
    assert_parity(out["cls"][0], pairs["cls"][pair])
    assert_parity(out["loc"][0], pairs["loc"][pair])


def test_batched_pairs_match_pysot(net, pairs):
    """A kernel of batch 6 pairs item by item with a search batch of 6."""
    out = net.track(net.template(torch.from_numpy(pairs["z"])), torch.from_numpy(pairs["x"]))
    assert_parity(out["cls"], pairs["cls"])
    assert_parity(out["loc"], pairs["loc"])


def test_one_kernel_serves_a_search_batch(net, pairs):
    kernel = net.template(torch.from_numpy(pairs["z"][2:3]))
    out = net.track(kernel, torch.from_numpy(pairs["x"][[2, 2, 2]]))
    for name in ("cls", "loc"):
        assert out[name].shape[0] == 3
        for item in range(3):
            assert_parity(out[name][item], pairs[name][2])


def test_alexnet_legacy_feature_sizes():
    backbone = AlexNetLegacy().eval()
    with torch.no_grad():
        assert backbone(torch.zeros(1, 3, 127, 127)).shape == (1, 256, 6, 6)
        assert backbone(torch.zeros(1, 3, 287, 287)).shape == (1, 256, 26, 26)
    assert all(
        m.eps == 1e-5 for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)
    )


@pytest.mark.parametrize(
    "fixture_dir, weighted",
    [("siamrpn_r50_l234_dwxcorr", True), ("siamrpn_r50_l234_dwxcorr_otb", False)],
)
def test_multi_rpn_layout_equals_pysot(fixture_dir, weighted):
    """The ``rpn_head.`` part of pysot's ResNet-50 models, built from MultiRPN alone."""
    reference = json.loads(shared_path("fixtures", "pysot", fixture_dir, "keys.json").read_text())
    expected = [
        [key[len("rpn_head."):], shape] for key, shape, _ in reference["keys"]
        if key.startswith("rpn_head.")
    ]
    head = MultiRPN(anchor_num=5, in_channels=[256, 256, 256], weighted=weighted)
    assert [[key, list(value.shape)] for key, value in head.state_dict().items()] == expected


def _run_small_multi_rpn(logits=None):
    """MultiRPN on 3 random 8-channel levels: its fused outputs and each level's own.

    ``logits``: ``{"cls": [...], "loc": [...]}`` fusion parameters of a weighted head;
    ``None`` builds an unweighted one.
    """
    with torch.random.fork_rng():
        torch.manual_seed(0)
        head = MultiRPN(anchor_num=5, in_channels=[8, 8, 8], weighted=logits is not None).eval()
    generator = torch.Generator().manual_seed(1)
    zf = [torch.randn(2, 8, 7, 7, generator=generator) for _ in range(3)]
    xf = [torch.randn(2, 8, 11, 11, generator=generator) for _ in range(3)]
    with torch.no_grad():
        if logits is not None:
            head.cls_weight.copy_(torch.tensor(logits["cls"]))
            head.loc_weight.copy_(torch.tensor(logits["loc"]))
        fused = head(head.prepare(zf), xf)
        rpns = (head.rpn2, head.rpn3, head.rpn4)
        levels = [rpn(rpn.prepare(z), x) for rpn, z, x in zip(rpns, zf, xf)]
    return fused, levels


def test_multi_rpn_averages_levels_when_not_weighted():
    fused, levels = _run_small_multi_rpn()
    assert fused["cls"].shape == (2, 10, 5, 5) and fused["loc"].shape == (2, 20, 5, 5)
    for name in ("cls", "loc"):
        expected = (levels[0][name] + levels[1][name] + levels[2][name]) / 3
        torch.testing.assert_close(fused[name], expected)


def test_multi_rpn_fuses_with_softmax_weights():
    fused, levels = _run_small_multi_rpn({"cls": [0.0, 1.0, 2.0], "loc": [2.0, 0.0, 0.0]})
    softmax = {
        "cls": (0.09003057, 0.24472847, 0.66524096),
        "loc": (0.78698604, 0.10650698, 0.10650698),
    }
    for name, weights in softmax.items():
        expected = sum(w * level[name] for w, level in zip(weights, levels))
        torch.testing.assert_close(fused[name], expected)


def test_multi_rpn_rejects_a_wrong_number_of_levels():
    head = MultiRPN(anchor_num=5, in_channels=[8, 8, 8])
    with pytest.raises(ValueError, match="MultiRPN expects 3 feature levels, got 2"):
        head.prepare([torch.zeros(1, 8, 7, 7)] * 2)
    with pytest.raises(ValueError, match="3 feature levels and 6 kernel tensors, got 3 and 4"):
        head((torch.zeros(1, 8, 5, 5),) * 4, [torch.zeros(1, 8, 9, 9)] * 3)
