"""DaSiamRPN's SiamRPN (AlexNet + up-channel RPN) against its fixture outputs.

The fixture ships no weights: they follow the recipe in ``fixtures/dasiamrpn/README.md``,
rebuilt here from the published key list.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch

from tests.conftest import shared_path
from tests.parity import assert_layout, assert_parity, recipe_weights
from tracker.models.backbones.alexnet import AlexNetLegacy
from tracker.models.network import build_model

DASIAMRPN = ("fixtures", "dasiamrpn")


def _net(model: str, fixture: str):
    return build_model(model).load_weights(recipe_weights(shared_path(*DASIAMRPN, fixture)))


@pytest.fixture(scope="module")
def otb_net():
    return _net("dasiamrpn-otb", "dasiamrpn_otb")


@pytest.fixture(scope="module")
def big_net():
    return _net("dasiamrpn-big", "dasiamrpn_big")


@pytest.fixture(scope="module")
def otb_pairs():
    return np.load(shared_path(*DASIAMRPN, "dasiamrpn_otb", "net.npz"))


@pytest.fixture(scope="module")
def big_pairs():
    return np.load(shared_path(*DASIAMRPN, "dasiamrpn_big", "net.npz"))


@pytest.mark.parametrize(
    "model, fixture",
    [
        ("dasiamrpn-otb", "dasiamrpn_otb"),
        ("dasiamrpn-vot", "dasiamrpn_otb"),
        ("dasiamrpn-big", "dasiamrpn_big"),
    ],
)
def test_state_dict_layout_equals_dasiamrpn(model, fixture):
    assert_layout(build_model(model), shared_path(*DASIAMRPN, fixture, "keys.json"))


def _check_pair(net, pairs, pair: int) -> None:
    kernel = net.template(torch.from_numpy(pairs["z"][pair:pair + 1]))
    out = net.track(kernel, torch.from_numpy(pairs["x"][pair:pair + 1]))
    assert out["cls"].shape == (1, 10, 19, 19) and out["loc"].shape == (1, 20, 19, 19)
    assert_parity(out["cls"][0], pairs["score"][pair])
    assert_parity(out["loc"][0], pairs["delta"][pair])


@pytest.mark.parametrize("pair", range(6))
def test_otb_outputs_match_dasiamrpn(otb_net, otb_pairs, pair):
    _check_pair(otb_net, otb_pairs, pair)


@pytest.mark.parametrize("pair", range(6))
def test_big_outputs_match_dasiamrpn(big_net, big_pairs, pair):
    _check_pair(big_net, big_pairs, pair)


def test_batched_pairs_match_dasiamrpn(otb_net, otb_pairs):
    """A kernel of batch 6 (one up-channel kernel set per item) with a search batch of 6."""
    kernel = otb_net.template(torch.from_numpy(otb_pairs["z"]))
    assert [tuple(k.shape) for k in kernel] == [(6, 10, 256, 4, 4), (6, 20, 256, 4, 4)]
    out = otb_net.track(kernel, torch.from_numpy(otb_pairs["x"]))
    assert_parity(out["cls"], otb_pairs["score"])
    assert_parity(out["loc"], otb_pairs["delta"])


def test_one_kernel_serves_a_search_batch(otb_net, otb_pairs):
    kernel = otb_net.template(torch.from_numpy(otb_pairs["z"][4:5]))
    out = otb_net.track(kernel, torch.from_numpy(otb_pairs["x"][[4, 4]]))
    for name, reference in (("cls", "score"), ("loc", "delta")):
        assert out[name].shape[0] == 2
        for item in range(2):
            assert_parity(out[name][item], otb_pairs[reference][4])


def test_width_multiplier_doubles_every_layer():
    widths = [
        m.out_channels for m in AlexNetLegacy(width_mult=2).modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    assert widths == [192, 512, 768, 768, 512]
