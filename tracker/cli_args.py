"""Argument parsers shared by the commands (demo, export, benchmark): one spelling of each
value a user types, one error message naming the option."""

from __future__ import annotations

from typing import Tuple


def parse_box(text: str, option: str = "--box") -> Tuple[float, float, float, float]:
    """``x,y,w,h`` as four floats; ``option`` names the argument in the error."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise ValueError(f"{option} must be x,y,w,h, got {text!r}")
    return values  # type: ignore[return-value]
