"""Shared test helpers: where ``../shared`` is (skipping with a reason when it is not), and
running code where torch cannot be imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, Optional

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _private_weights_cache(tmp_path_factory):
    """Downloads, exports and the verified-weights record of a test run go to a folder of its
    own (unless ``TRACKER_CACHE`` names one), never into the user's ``~/.cache/tracker``."""
    if "TRACKER_CACHE" in os.environ:
        yield
        return
    os.environ["TRACKER_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    del os.environ["TRACKER_CACHE"]


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


_BLOCK_TORCH = textwrap.dedent(
    """
    import sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is not installed here")

    sys.meta_path.insert(0, BlockTorch())
    """
)


def run_without_torch(script: str, *args: str, env: Optional[Dict[str, str]] = None):
    """Run ``script`` in a fresh interpreter where importing torch fails, as on a machine
    without it; ``script`` ends by checking that nothing imported torch. Returns the
    ``subprocess.CompletedProcess`` (text output captured)."""
    check = '\nassert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch imported"\n'
    return subprocess.run(
        [sys.executable, "-c", _BLOCK_TORCH + textwrap.dedent(script) + check, *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300,
    )
