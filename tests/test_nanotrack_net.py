"""NanoTrack v1-v3 networks against the real checkpoints and the reference outputs.

Reference: ``fixtures/nanotrack`` (keys_v{N}.json, net_v{N}.npz; README sections 3, 6, 9),
produced by the original NanoTrack code with the published Apache-2.0 weights
(HonglinChu/SiamTrackers, NanoTrack/models/pretrained).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tracker.models import build_model
from tracker.models.backbones.mobilenet_v3 import MobileNetV3Small

from .conftest import shared_path

VERSIONS = (1, 2, 3)
CHANNELS = {1: 48, 2: 48, 3: 96}
SCORE_SIZE = {1: 16, 2: 16, 3: 15}
PAIRS = 6


@pytest.fixture(scope="module", params=VERSIONS, ids=lambda v: f"v{v}")
def version(request):
    return request.param


@pytest.fixture(scope="module")
def network(version):
    return build_model(f"nanotrack-v{version}")


@pytest.fixture(scope="module")
def trained(network, version):
    return network.load_weights(shared_path("weights", "nanotrack", f"nanotrackv{version}.pth"))


@pytest.fixture(scope="module")
def reference(version):
    with np.load(shared_path("fixtures", "nanotrack", f"net_v{version}.npz")) as data:
        return {name: data[name] for name in ("z", "x", "zf", "xf", "cls", "loc", "score_flat")}


@pytest.fixture(scope="module")
def crops(reference):
    return torch.from_numpy(reference["z"]), torch.from_numpy(reference["x"])


@pytest.fixture(scope="module")
def single_calls(trained, crops):
    """Backbone features and head outputs of each (template, search) pair on its own."""
    z, x = crops
    results = {"zf": [], "xf": [], "cls": [], "loc": []}
    with torch.no_grad():
        for i in range(PAIRS):
            results["zf"].append(trained.backbone(z[i:i + 1]))
            results["xf"].append(trained.backbone(x[i:i + 1]))
            out = trained.track(trained.template(z[i:i + 1]), x[i:i + 1])
            results["cls"].append(out["cls"])
            results["loc"].append(out["loc"])
    return {name: torch.cat(parts).numpy() for name, parts in results.items()}


def test_state_dict_layout_matches_published_checkpoint(network, version):
    path = shared_path("fixtures", "nanotrack", f"keys_v{version}.json")
    expected = [
        (entry["key"], tuple(entry["shape"]), entry["dtype"])
        for entry in json.loads(path.read_text())["keys"]
    ]
    actual = [
        (key, tuple(tensor.shape), str(tensor.dtype).replace("torch.", ""))
        for key, tensor in network.state_dict().items()
    ]
    assert actual == expected


def test_backbone_features_match_reference(single_calls, reference, version):
    channels = CHANNELS[version]
    assert single_calls["zf"].shape == (PAIRS, channels, 8, 8)
    assert single_calls["xf"].shape == (PAIRS, channels, 16, 16)
    np.testing.assert_allclose(single_calls["zf"], reference["zf"], rtol=0, atol=2e-3)
    np.testing.assert_allclose(single_calls["xf"], reference["xf"], rtol=0, atol=2e-3)


def test_head_outputs_match_reference(single_calls, reference, version):
    n = SCORE_SIZE[version]
    assert single_calls["cls"].shape == (PAIRS, 2, n, n)
    assert single_calls["loc"].shape == (PAIRS, 4, n, n)
    np.testing.assert_allclose(single_calls["cls"], reference["cls"], rtol=0, atol=2e-3)
    np.testing.assert_allclose(single_calls["loc"], reference["loc"], rtol=1e-3, atol=0)


def test_foreground_probability_matches_reference(single_calls, reference):
    probability = torch.softmax(torch.from_numpy(single_calls["cls"]), dim=1)[:, 1]
    np.testing.assert_allclose(
        probability.reshape(PAIRS, -1).numpy(), reference["score_flat"], rtol=0, atol=1e-4
    )


def test_one_template_serves_a_search_batch(trained, crops):
    z, x = crops
    batched = trained.track(trained.template(z[:1]), x[:3])
    for i in range(3):
        single = trained.track(trained.template(z[:1]), x[i:i + 1])
        torch.testing.assert_close(batched["cls"][i:i + 1], single["cls"], rtol=0, atol=1e-4)
        torch.testing.assert_close(batched["loc"][i:i + 1], single["loc"], rtol=1e-4, atol=0)


def test_kernel_batch_pairs_with_search_batch(trained, crops, single_calls):
    z, x = crops
    out = trained.track(trained.template(z[:3]), x[:3])
    np.testing.assert_allclose(out["cls"].numpy(), single_calls["cls"][:3], rtol=0, atol=1e-4)
    np.testing.assert_allclose(out["loc"].numpy(), single_calls["loc"][:3], rtol=1e-4, atol=0)


def test_template_features_of_wrong_size_are_refused(network, version):
    features = torch.zeros(1, CHANNELS[version], 7, 7)
    with pytest.raises(ValueError, match=r"template features must be N x \d+ x 8 x 8"):
        network.head.prepare(features)


def test_backbone_rejects_unknown_width():
    with pytest.raises(ValueError, match=r"out_channels must be one of \[48, 96\], got 64"):
        MobileNetV3Small(out_channels=64)



def test_the_traced_search_branch_gives_the_eager_outputs(monkeypatch):
    """NanoTrack's torch backend runs a channels-last ``torch.jit.trace`` graph per input
    shape; it must be the same computation up to float rounding, and a failure to trace must
    leave the eager network in charge (bit for bit)."""
    from tracker.backends import torch_backend

    network = build_model("nanotrack-v2").load_weights(
        shared_path("weights", "nanotrack", "nanotrackv2.pth"))
    crops = np.load(shared_path("fixtures", "nanotrack", "net_v2.npz"))
    z, x = crops["z"][:1], crops["x"][:2]
    eager_kernel = network.template(torch.from_numpy(z))
    expected = network.track(eager_kernel, torch.from_numpy(x))
    assert "nanotrack" in torch_backend.TRACED_FAMILIES
    runner = torch_backend.TorchRunner(network, trace=True)
    kernel = runner.template(z)
    for search in (x[:1], x, x[:1]):
        reference = network.track(eager_kernel, torch.from_numpy(search))
        outputs = runner.track(kernel, search)
        assert list(outputs) == ["cls", "loc"]
        for name, value in outputs.items():
            np.testing.assert_allclose(value, reference[name].numpy(), rtol=1e-5, atol=1e-5)
    assert len(runner._traced) == 2 and all(runner._traced.values())

    def refuse(*args, **kwargs):
        raise RuntimeError("tracing is not available")

    monkeypatch.setattr(torch.jit, "trace", refuse)
    eager = torch_backend.TorchRunner(network, trace=True)
    np.testing.assert_array_equal(eager.track(kernel, x)["loc"], expected["loc"].numpy())
    assert list(eager._traced.values()) == [None]
