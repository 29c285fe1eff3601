"""The reference implementations' geometry rules, one value object per rule set.

pysot (and NanoTrack), DaSiamRPN and siamfc-pytorch crop, pad, clip and lay out their
score grids slightly differently; matching their checkpoints bit for bit means following
each one's rules. A :class:`Convention` holds one set, so crops and loops ask it instead of
comparing convention names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import numpy as np


def _pysot_origin(center: float, size: int) -> int:
    return math.floor(center - (size + 1) / 2 + 0.5)


def _dasiamrpn_origin(center: float, size: int) -> int:
    # DaSiamRPN's centre sits half a pixel to the right (corner coordinates); half to even.
    return round(center + 0.5 - (size + 1) / 2)


def _siamfc_origin(center: float, size: int) -> int:
    # siamfc-pytorch centres the window exactly and rounds half to even.
    return round(center - (size - 1) / 2)


@dataclass(frozen=True)
class Convention:
    """One reference implementation's geometry rules.

    ``crop_origin(center, size)``: first pixel index of a ``size``-pixel window centred at
    ``center`` (pixel-index coordinates). ``padding_rounding``: how the frame's channel means
    become the uint8 padding colour (``np.trunc`` or ``np.rint``). ``center_offset``: the
    centre is clipped to ``[0, frame side] - center_offset``. ``grid_half``: the score grid of
    ``n`` cells starts at ``-grid_half(n) * stride``.
    """

    name: str
    crop_origin: Callable[[float, int], int]
    padding_rounding: Callable[[np.ndarray], np.ndarray]
    center_offset: float
    grid_half: Callable[[int], float]


_CONVENTIONS: Dict[str, Convention] = {
    c.name: c
    for c in (
        Convention("pysot", _pysot_origin, np.trunc, 0.0, lambda n: n // 2),
        Convention("dasiamrpn", _dasiamrpn_origin, np.trunc, 0.5, lambda n: n / 2),
        Convention("siamfc", _siamfc_origin, np.rint, 0.0, lambda n: n // 2),
    )
}

CONVENTION_NAMES: Tuple[str, ...] = tuple(_CONVENTIONS)


def convention(name: str) -> Convention:
    """The rule set called ``name`` (one of :data:`CONVENTION_NAMES`)."""
    try:
        return _CONVENTIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"convention must be one of {CONVENTION_NAMES}, got {name!r}"
        ) from None
