"""Helpers shared by the parity tests against ``../shared/fixtures``."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path
from typing import Dict

import numpy as np
import torch

from tracker.models.network import SiameseNetwork


def assert_parity(actual: torch.Tensor, expected: np.ndarray) -> float:
    """Fixture tolerance (fixtures README section 7): rtol 1e-4, atol 1e-4 * std(expected).

    The outputs of the random-weight networks differ in scale by orders of magnitude, so
    the absolute part follows the spread of the expected values. Returns the max abs error.
    """
    expected_t = torch.from_numpy(np.asarray(expected))
    atol = 1e-4 * float(expected_t.std())
    torch.testing.assert_close(actual, expected_t, rtol=1e-4, atol=atol)
    return float((actual - expected_t).abs().max())


def assert_layout(net: SiameseNetwork, keys_json: Path) -> None:
    """``net.state_dict()`` keys, their order, shapes and dtypes equal a fixture's keys.json."""
    reference = json.loads(keys_json.read_text())
    layout = [
        [key, list(value.shape), str(value.dtype).replace("torch.", "")]
        for key, value in net.state_dict().items()
    ]
    assert layout == reference["keys"]
    if "num_params" in reference:  # DaSiamRPN's count: every float entry, buffers included
        floats = [v for v in net.state_dict().values() if v.is_floating_point()]
        assert sum(v.numel() for v in floats) == reference["num_params"]
    else:  # pysot and siamfc count parameters and buffers apart
        assert sum(p.numel() for p in net.parameters()) == reference["num_parameters"]
        assert len(list(net.parameters())) == reference["num_parameter_tensors"]
        assert sum(b.numel() for b in net.buffers()) == reference["num_buffer_elements"]


def recipe_weights(folder: Path) -> Dict[str, torch.Tensor]:
    """The fixture's deterministic weights for the keys of ``folder/keys.json``."""
    keys = json.loads((folder / "keys.json").read_text())["keys"]
    gains = json.loads((folder / "config.json").read_text())["recipe_gains"]
    names = {key for key, _, _ in keys}
    state = OrderedDict()
    for index, (key, shape, _) in enumerate(keys):
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0, dtype=torch.int64)
            continue
        count = math.prod(shape)
        k = np.arange(count, dtype=np.uint64)
        # uint64 arithmetic wraps modulo 2**64, which keeps the value modulo 2**32 exact.
        hashed = k * np.uint64(2654435761) + np.uint64((index + 1) * 40503)
        u = (hashed & np.uint64(2**32 - 1)).astype(np.float64) / 2**32
        base = u - 0.5
        prefix, _, leaf = key.rpartition(".")
        if len(shape) >= 2:
            values = base * 2 * math.sqrt(3 / (shape[1] * math.prod(shape[2:])))
        elif f"{prefix}.running_mean" not in names:
            values = 0.1 * base
        else:
            values = {
                "weight": 1 + 0.2 * base,
                "bias": 0.2 * base,
                "running_mean": 0.2 * base,
                "running_var": 1 + 0.5 * u,
            }[leaf]
        values = values.reshape(shape).astype(np.float32)
        if key in gains:
            values = values * np.float32(gains[key])
        state[key] = torch.from_numpy(values)
    return state
