"""torchrun: two processes with batch B reach the weights of one process with batch 2B on the
same pairs (DistributedDataParallel over gloo on CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_train_engine import assert_same_weights, weights, write_otb

ROOT = Path(__file__).resolve().parents[1]


def _train(otb: Path, out: Path, processes: int, batch: int) -> subprocess.CompletedProcess:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc_per_node={processes}"] if processes > 1 else [sys.executable])
    command = launcher + [
        "-m", "tracker.train", "--model", "siamfc-alexnet", "--data", f"otb:{otb}",
        "--out", str(out), "--epochs", "1", "--pairs-per-epoch", "8",
        "--batch-size", str(batch), "--workers", "0", "--quiet",
        # Per-process BatchNorm statistics would differ between B and 2B pairs.
        "--set", "optim.freeze_bn=true", "--set", "schedule.lr_start=1e-5",
        "--set", "schedule.lr_end=1e-6",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300,
                          cwd=ROOT)


@pytest.mark.slow
def test_two_processes_with_batch_b_equal_one_with_batch_2b(tmp_path: Path):
    otb = write_otb(tmp_path / "otb")
    single = _train(otb, tmp_path / "single", 1, 4)
    assert single.returncode == 0, single.stderr
    double = _train(otb, tmp_path / "double", 2, 2)
    assert double.returncode == 0, double.stderr
    assert_same_weights(tmp_path / "single" / "model.pth", tmp_path / "double" / "model.pth",
                        tolerance=1e-5)
    logs = (tmp_path / "double" / "log.jsonl").read_text().splitlines()
    assert len(logs) == 3, "rank 0 alone writes: 2 steps and 1 epoch"
    moved = weights(tmp_path / "double" / "model.pth")["backbone.conv5.0.bias"]
    assert float(moved.abs().max()) > 0, "the zero-initialised bias learned something"
