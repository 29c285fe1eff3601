"""Markdown output shared by the benchmark commands."""

from __future__ import annotations

import os
import platform
from typing import List, Sequence


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    """Lines of a Markdown table."""
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def machine() -> str:
    """The CPU model and its logical CPU count, for the line under a table."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        model = names[0] if names else model
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs"
