"""Shared test helpers: where ``../shared`` is, and skipping with a reason when it is not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``$TRACKER_SHARED`` or ``../shared`` beside the project root."""
    return Path(os.environ.get("TRACKER_SHARED", ROOT.parent / "shared")).resolve()


def shared_path(*parts: str) -> Path:
    """A path under the shared folder; skips the calling test when it is absent."""
    path = shared_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared data folder; set TRACKER_SHARED to its location)")
    return path


@pytest.fixture
def shared():
    """Fixture form of :func:`shared_path`."""
    return shared_path
