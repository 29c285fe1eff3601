"""The one-step fixtures (``steps*.csv``) as one table, and the torch backend's results on
them, computed once per test session: the torch parity tests and the onnxruntime parity
tests compare against the same boxes."""

from __future__ import annotations

import atexit
import csv
import shutil
import tempfile
from dataclasses import dataclass, replace
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

import cv2
import numpy as np
import torch

import tracker
from tests.conftest import shared_dir, shared_path
from tests.parity import recipe_weights
from tracker.api import Tracker
from tracker.backends.torch_backend import TorchRunner
from tracker.models import SiameseNetwork, build_model


@dataclass(frozen=True)
class Steps:
    """A one-step fixture: its CSV under ``fixtures/``, columns, and the init box's shift to the
    library's 0-based corners. ``one_per_sequence`` keeps each sequence's first row (slow models)."""

    path: Tuple[str, ...]
    sequence_column: str
    frame_column: str
    init_columns: Tuple[str, ...] = ("init_x", "init_y", "init_w", "init_h")
    shift: float = 0.0
    one_per_sequence: bool = False
    #: The export is checked on each sequence's first and last row only (a slow model whose
    #: rows still cover every search size it picks).
    export_ends_only: bool = False


_MOBILEV2_STEPS = Steps(("pysot", "siamrpn_mobilev2_l234_dwxcorr", "steps.csv"), "sequence", "t")
_DASIAMRPN_OTB_STEPS = Steps(("dasiamrpn", "dasiamrpn_otb", "steps.csv"), "sequence", "frame")
#: The steps each model's export is checked on. Models without steps of their own use rows of a
#: fixture whose tracker fits: dasiamrpn-vot has dasiamrpn-otb's network (with its own
#: hyper-parameters), the ResNet-50 models track like the MobileNetV2 one.
STEPS = {
    "siamfc-alexnet": Steps(("siamfc", "steps.csv"), "sequence", "t",
                            ("init_x_1based", "init_y_1based", "init_w", "init_h"), -1.0),
    "siamrpnpp-alex": Steps(("pysot", "siamrpn_alex_dwxcorr", "steps.csv"), "sequence", "t"),
    "siamrpnpp-mobilenetv2": _MOBILEV2_STEPS,
    "siamrpnpp-r50": replace(_MOBILEV2_STEPS, one_per_sequence=True),
    "siamrpnpp-r50-otb": replace(_MOBILEV2_STEPS, one_per_sequence=True),
    "dasiamrpn-otb": _DASIAMRPN_OTB_STEPS,
    "dasiamrpn-vot": _DASIAMRPN_OTB_STEPS,
    "dasiamrpn-big": Steps(("dasiamrpn", "dasiamrpn_big", "steps.csv"), "sequence", "frame",
                           export_ends_only=True),
    **{f"nanotrack-v{v}": Steps(("nanotrack", f"steps_v{v}.csv"), "seq", "frame") for v in (1, 2, 3)},
}
#: Weights under the shared folder: a checkpoint, or a DaSiamRPN recipe folder. The ResNet-50
#: models have neither and run with seeded untrained weights.
WEIGHTS = {
    "siamfc-alexnet": ("fixtures", "siamfc", "checkpoint.pth"),
    "siamrpnpp-alex": ("fixtures", "pysot", "siamrpn_alex_dwxcorr", "checkpoint.pth"),
    "siamrpnpp-mobilenetv2": ("fixtures", "pysot", "siamrpn_mobilev2_l234_dwxcorr", "checkpoint.pth"),
    "dasiamrpn-otb": ("fixtures", "dasiamrpn", "dasiamrpn_otb"),
    "dasiamrpn-vot": ("fixtures", "dasiamrpn", "dasiamrpn_otb"),
    "dasiamrpn-big": ("fixtures", "dasiamrpn", "dasiamrpn_big"),
    **{f"nanotrack-v{v}": ("weights", "nanotrack", f"nanotrackv{v}.pth") for v in (1, 2, 3)},
}


def network_for(name: str) -> SiameseNetwork:
    """The torch network with the weights of :data:`WEIGHTS` (seeded untrained otherwise)."""
    torch.manual_seed(0)
    network = build_model(name)
    if name not in WEIGHTS:
        return network
    source = shared_path(*WEIGHTS[name])
    return network.load_weights(recipe_weights(source) if source.is_dir() else source)


@lru_cache(maxsize=None)
def step_frame(sequence: str, number: int) -> np.ndarray:
    return cv2.imread(str(shared_path("data", "otb", sequence, "img", f"{number:04d}.jpg")))


def step_rows(name: str) -> List[Dict[str, str]]:
    """The fixture rows ``name`` is checked on, in file order."""
    steps = STEPS[name]
    with open(shared_path("fixtures", *steps.path), newline="") as handle:
        rows = list(csv.DictReader(handle))
    if steps.one_per_sequence:
        first: Dict[str, Dict[str, str]] = {}
        for row in rows:
            first.setdefault(row[steps.sequence_column], row)
        rows = list(first.values())
    return rows


class StepResults(NamedTuple):
    boxes: np.ndarray  # library convention
    scores: np.ndarray
    search_sizes: np.ndarray  # the search crop size the loop chose at init


def export_rows(name: str) -> List[int]:
    """Indices of the rows ``name``'s export is checked on: all, or with ``export_ends_only``
    each sequence's first and last."""
    steps = STEPS[name]
    sequences = [row[steps.sequence_column] for row in step_rows(name)]
    if not steps.export_ends_only:
        return list(range(len(sequences)))
    return [i for i, sequence in enumerate(sequences)
            if i == 0 or i == len(sequences) - 1 or sequence != sequences[i - 1]
            or sequence != sequences[i + 1]]


def step_results(trk: Tracker, name: str, rows: Optional[List[int]] = None) -> StepResults:
    """``trk`` on every row (or the ``rows`` indices): ``init`` on frame t-1 with the row's
    box, one ``update`` on frame t."""
    steps = STEPS[name]
    boxes, scores, search_sizes = [], [], []
    chosen = step_rows(name)
    for row in (chosen if rows is None else [chosen[i] for i in rows]):
        t = int(row[steps.frame_column])
        x, y, w, h = (float(row[c]) for c in steps.init_columns)
        sequence = row[steps.sequence_column]
        trk.init(step_frame(sequence, t - 1), (x + steps.shift, y + steps.shift, w, h))
        search_sizes.append(getattr(trk._loop, "_search", 0))
        result = trk.update(step_frame(sequence, t))
        boxes.append(result.box)
        scores.append(result.score)
    return StepResults(np.array(boxes), np.array(scores), np.array(search_sizes))


@lru_cache(maxsize=None)
def torch_step_results(name: str) -> StepResults:
    """:func:`step_results` of the torch backend with :func:`network_for`'s weights."""
    return step_results(Tracker(reference_config(name), TorchRunner(network_for(name))), name)


def reference_config(name: str):
    """``name``'s config with the references' loop: short-term, no centre correction."""
    return tracker.get_config(name).with_tracking(long_term=False, center_bias=(0.0, 0.0))


_EXPORT_ROOT: List[Path] = []
_EXPORT_POOL: List[ProcessPoolExecutor] = []
_EXPORTS: Dict[str, "Future[Path]"] = {}


def exported(name: str) -> Path:
    """The export folder of :func:`network_for`'s network, written once per test session into
    a temporary folder (the contract and the ONNX parity tests share it).

    Exports are torch's single-threaded tracing, 5 to 40 s each: two worker processes write
    them, the one asked for and the next model's in ``list_models`` order (the order the
    contract tests ask in), so that both cores work while a test waits for its export.
    """
    if name in WEIGHTS:
        shared_path(*WEIGHTS[name])  # skips here, not in a worker, when the weights are absent
    if not _EXPORT_ROOT:
        _EXPORT_ROOT.append(Path(tempfile.mkdtemp(prefix="tracker-exports-")))
        atexit.register(shutil.rmtree, _EXPORT_ROOT[0], True)
        pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
        _EXPORT_POOL.append(pool)
        atexit.register(pool.shutdown, wait=False, cancel_futures=True)
    models = list(tracker.list_models())
    following = models[models.index(name) + 1:models.index(name) + 2] if name in models else []
    for wanted in [name] + [m for m in following if m not in WEIGHTS or _has_weights(m)]:
        if wanted not in _EXPORTS:
            _EXPORTS[wanted] = _EXPORT_POOL[0].submit(_export_into, wanted, _EXPORT_ROOT[0])
    return _EXPORTS[name].result()


def _has_weights(name: str) -> bool:
    return shared_dir().joinpath(*WEIGHTS[name]).exists()


def _export_into(name: str, root: Path) -> Path:
    """Worker process: write ``name``'s export under ``root``."""
    from tracker.export import export_model

    folder = root / name
    export_model(reference_config(name), network_for(name), folder)
    return folder
