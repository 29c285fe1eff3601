"""Reading checkpoint files as their authors publish them, without executing their code.

Checkpoints are untrusted input: they are unpickled with torch's ``weights_only`` mode, and
the only extra globals allowed are the numpy types NanoTrack's files carry in their
training metadata (a float64 numpy scalar). A file that asks for anything else is refused.
A file read is also checked for values no trained network holds (NaN or infinite numbers,
negative BatchNorm variances): such a file is damaged, and would track NaN boxes silently.
"""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Mapping, Union

import numpy as np
import torch

from ..errors import CheckpointError

PathLike = Union[str, "os.PathLike[str]"]

# numpy 2 moved ``numpy.core`` to ``numpy._core``: the published pickles name the old path,
# files re-saved under numpy 2 the new one.
_NUMPY_METADATA_GLOBALS = [
    (np._core.multiarray.scalar, "numpy.core.multiarray.scalar"),
    np._core.multiarray.scalar,
    np.dtype,
    np.dtypes.Float64DType,
]

# How torch's weights-only unpickler reports a request for a forbidden global or type, as
# opposed to bytes that are not a pickle at all.
_FORBIDDEN_OBJECT_MARKERS = ("global", "can only build", "allowlist")


def read_checkpoint(path: PathLike) -> Dict[str, torch.Tensor]:
    """Read a checkpoint file and return its state dict (tensors on the CPU).

    Accepts a plain state dict or ``{"state_dict": ...}`` (other entries such as the
    optimizer are ignored), with or without a ``module.`` prefix on every key.
    """
    file = Path(os.fspath(path))
    if not file.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {file}")
    try:
        with torch.serialization.safe_globals(_NUMPY_METADATA_GLOBALS):
            content = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        message = str(exc)
        if "WeightsUnpickler error:" in message:
            message = message.split("WeightsUnpickler error:", 1)[1]
        lines = [line.strip() for line in message.splitlines() if line.strip()]
        reason = next((line for line in lines if "GLOBAL" in line), lines[0] if lines else "")
        if any(marker in reason.lower() for marker in _FORBIDDEN_OBJECT_MARKERS):
            raise CheckpointError(
                f"{file} is not a plain weights file and was refused (loading it would run "
                f"code or build objects other than tensors: {reason})"
            ) from None
        raise CheckpointError(f"{file} is not a PyTorch checkpoint ({reason})") from None
    except Exception as exc:  # torch raises many types for non-checkpoint files
        raise CheckpointError(
            f"{file} is not a PyTorch checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    state = extract_state_dict(content, str(file))
    check_values(state, str(file))
    return state


def check_values(state: Mapping[str, torch.Tensor], origin: str = "checkpoint") -> None:
    """Refuse a state dict holding NaN/inf values or negative BatchNorm ``running_var``.

    One reduction per floating-point tensor (a sum, non-finite when any element is; the exact
    count is taken only for the tensor that fails). Raises :class:`CheckpointError` naming
    ``origin`` and the tensor's key.
    """
    for key, tensor in state.items():
        if not tensor.is_floating_point() or tensor.numel() == 0:
            continue
        if not torch.isfinite(tensor.sum(dtype=torch.float64)):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(
                f"{origin}: tensor {key!r} holds {bad} NaN or infinite value(s) of "
                f"{tensor.numel()}; the file is damaged (download it again)"
            )
        if key.endswith("running_var") and bool((tensor < 0).any()):
            raise CheckpointError(
                f"{origin}: tensor {key!r} (BatchNorm variances) holds "
                f"{int((tensor < 0).sum())} negative value(s) of {tensor.numel()}; "
                "the file is damaged (download it again)"
            )


def extract_state_dict(content: object, origin: str = "checkpoint") -> Dict[str, torch.Tensor]:
    """The state dict inside a loaded checkpoint object, with ``module.`` prefixes removed."""
    if isinstance(content, Mapping) and isinstance(content.get("state_dict"), Mapping):
        content = content["state_dict"]
    if not isinstance(content, Mapping) or not content:
        raise CheckpointError(
            f"{origin} holds no state dict (expected a dict of tensors or a dict with a "
            f"'state_dict' entry, got {type(content).__name__})"
        )
    not_tensors = [str(k) for k, v in content.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(
            f"{origin} is not a state dict: entries {', '.join(not_tensors[:5])} are not tensors"
        )
    keys = [str(k) for k in content]
    if all(k.startswith("module.") for k in keys):
        return OrderedDict((k[len("module."):], v) for k, v in content.items())
    return OrderedDict(content)
