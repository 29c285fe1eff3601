"""pysot's multi-layer SiamRPN++ networks: ResNet-50 and MobileNetV2 backbones.

MobileNetV2 is checked number for number against the fixture outputs; ResNet-50 has no
fixture weights, so it is checked by its state-dict layout, its convolution geometry
(pysot's padding and dilation rules) and its output shapes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import shared_path
from tests.parity import assert_layout, assert_parity
from tracker.models.backbones.mobilenet_v2 import MobileNetV2
from tracker.models.backbones.resnet import ResNet50
from tracker.models.network import build_model

PYSOT = ("fixtures", "pysot")
MOBILENET_DIR = "siamrpn_mobilev2_l234_dwxcorr"


@pytest.fixture(scope="module")
def mobilenet_net():
    checkpoint = shared_path(*PYSOT, MOBILENET_DIR, "checkpoint.pth")
    return build_model("siamrpnpp-mobilenetv2").load_weights(checkpoint)


@pytest.fixture(scope="module")
def mobilenet_pairs():
    return np.load(shared_path(*PYSOT, MOBILENET_DIR, "net.npz"))


@pytest.fixture(scope="module")
def mobilenet_outputs(mobilenet_net, mobilenet_pairs):
    z, x = (torch.from_numpy(mobilenet_pairs[name]) for name in ("z", "x"))
    return [
        mobilenet_net.track(mobilenet_net.template(z[i:i + 1]), x[i:i + 1]) for i in range(len(z))
    ]


@pytest.fixture(scope="module")
def r50_run():
    """One ResNet-50 network run: template batch 1, search batch 2, then search item 1 alone.

    A forward hook records the backbone's output shapes on the way.
    """
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = build_model("siamrpnpp-r50")
    backbone_shapes = []
    net.backbone.register_forward_hook(
        lambda _module, _inputs, out: backbone_shapes.append([tuple(t.shape) for t in out])
    )
    generator = torch.Generator().manual_seed(3)
    z = torch.rand(1, 3, 127, 127, generator=generator) * 255
    x = torch.rand(2, 3, 255, 255, generator=generator) * 255
    kernel = net.template(z)
    pair = net.track(kernel, x)
    single = net.track(kernel, x[1:])
    return net, backbone_shapes, pair, single


@pytest.mark.parametrize(
    "model, fixture_dir",
    [
        ("siamrpnpp-mobilenetv2", MOBILENET_DIR),
        ("siamrpnpp-r50", "siamrpn_r50_l234_dwxcorr"),
        ("siamrpnpp-r50-otb", "siamrpn_r50_l234_dwxcorr_otb"),
    ],
)
def test_state_dict_layout_equals_pysot(model, fixture_dir):
    keys_json = shared_path(*PYSOT, fixture_dir, "keys.json")
    net = build_model(model)
    assert_layout(net, keys_json)
    reference = json.loads(keys_json.read_text())
    assert len(net.state_dict()) == reference["num_state_dict_entries"]
    assert len(list(net.parameters())) == reference["num_parameter_tensors"]
    assert sum(b.numel() for b in net.buffers()) == reference["num_buffer_elements"]


@pytest.mark.parametrize("name", ["cls", "loc"])
@pytest.mark.parametrize("pair", range(6))
def test_mobilenet_matches_pysot_outputs(mobilenet_outputs, mobilenet_pairs, pair, name):
    """Each pair as the fixture recorded it: template batch 1, search batch 1."""
    out = mobilenet_outputs[pair][name]
    assert out.shape == (1,) + mobilenet_pairs[name].shape[1:]
    assert_parity(out[0], mobilenet_pairs[name][pair])


def test_mobilenet_batched_pairs_match_pysot_outputs(mobilenet_net, mobilenet_pairs):
    """A kernel of batch 6 pairs item by item with a search batch of 6."""
    data = mobilenet_pairs
    kernel = mobilenet_net.template(torch.from_numpy(data["z"]))
    out = mobilenet_net.track(kernel, torch.from_numpy(data["x"]))
    assert_parity(out["cls"], data["cls"])
    assert_parity(out["loc"], data["loc"])


def test_mobilenet_levels_and_sizes():
    backbone = MobileNetV2(used_layers=[3, 5, 7], width_mult=1.4).eval()
    with torch.no_grad():
        template = backbone(torch.zeros(1, 3, 127, 127))
        search = backbone(torch.zeros(1, 3, 255, 255))
    assert [tuple(t.shape) for t in template] == [(1, 44, 15, 15), (1, 134, 15, 15), (1, 448, 15, 15)]
    assert [tuple(t.shape) for t in search] == [(1, 44, 31, 31), (1, 134, 31, 31), (1, 448, 31, 31)]


def test_r50_backbone_feature_sizes(r50_run):
    _, backbone_shapes, _, _ = r50_run
    template, search_pair, search_single = backbone_shapes
    assert template == [(1, 512, 15, 15), (1, 1024, 15, 15), (1, 2048, 15, 15)]
    assert search_pair == [(2, 512, 31, 31), (2, 1024, 31, 31), (2, 2048, 31, 31)]
    assert search_single == [(1, 512, 31, 31), (1, 1024, 31, 31), (1, 2048, 31, 31)]


def test_r50_output_shapes_and_kernel_broadcast(r50_run):
    _, _, pair, single = r50_run
    assert single["cls"].shape == (1, 10, 25, 25) and single["loc"].shape == (1, 20, 25, 25)
    assert pair["cls"].shape == (2, 10, 25, 25) and pair["loc"].shape == (2, 20, 25, 25)
    for name in ("cls", "loc"):
        assert_parity(pair[name][1:], single[name].numpy())
        assert (pair[name][0] - pair[name][1]).abs().max() > 1e-2 * single[name].std()


R50_GEOMETRY = [
    ("conv1", (7, 2, 0, 1)),
    ("layer1.0.conv2", (3, 1, 1, 1)),
    ("layer1.0.downsample.0", (1, 1, 0, 1)),
    ("layer2.0.conv2", (3, 2, 0, 1)),
    ("layer2.0.downsample.0", (3, 2, 0, 1)),
    ("layer2.1.conv2", (3, 1, 1, 1)),
    ("layer3.0.conv2", (3, 1, 1, 1)),
    ("layer3.0.downsample.0", (3, 1, 1, 1)),
    ("layer3.5.conv2", (3, 1, 2, 2)),
    ("layer4.0.conv2", (3, 1, 2, 2)),
    ("layer4.0.downsample.0", (3, 1, 2, 2)),
    ("layer4.2.conv2", (3, 1, 4, 4)),
]


@pytest.mark.parametrize("name, geometry", R50_GEOMETRY)
def test_r50_convolution_geometry_follows_pysot(r50_run, name, geometry):
    """(kernel, stride, padding, dilation) where pysot's rules are unusual."""
    conv = r50_run[0].backbone.get_submodule(name)
    assert (conv.kernel_size[0], conv.stride[0], conv.padding[0], conv.dilation[0]) == geometry


def test_r50_stem_pooling_and_batchnorm_eps(r50_run):
    backbone = r50_run[0].backbone
    pool = backbone.maxpool
    assert (pool.kernel_size, pool.stride, pool.padding) == (3, 2, 1)
    assert all(m.eps == 1e-5 for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_single_level_returns_a_tensor_and_builds_only_what_it_uses():
    backbone = ResNet50(used_layers=[2]).eval()
    assert not any(key.startswith(("layer3.", "layer4.")) for key in backbone.state_dict())
    with torch.no_grad():
        out = backbone(torch.zeros(1, 3, 127, 127))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 512, 15, 15)


@pytest.mark.parametrize(
    "backbone, kwargs, message",
    [
        (ResNet50, {"used_layers": []}, r"used_layers must be a non-empty list of ints in 0\.\.4"),
        (ResNet50, {"used_layers": 2}, r"in 0\.\.4, got 2$"),
        (ResNet50, {"used_layers": [5]}, r"used_layers must be .* in 0\.\.4, got \[5\]"),
        (ResNet50, {"used_layers": [-1]}, r"in 0\.\.4, got \[-1\]"),
        (ResNet50, {"used_layers": [2.0]}, r"in 0\.\.4, got \[2\.0\]"),
        (ResNet50, {"used_layers": [True]}, r"in 0\.\.4, got \[True\]"),
        (MobileNetV2, {"used_layers": [8]}, r"in 0\.\.7, got \[8\]"),
        (MobileNetV2, {"width_mult": 0}, "width_mult must be positive, got 0"),
    ],
)
def test_invalid_backbone_arguments_are_rejected(backbone, kwargs, message):
    with pytest.raises(ValueError, match=message):
        backbone(**kwargs)
