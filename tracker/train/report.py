"""What a training run tells its user: a JSON-lines log, TensorBoard events, a curves PNG.

``log.jsonl`` holds one JSON object per line, written and flushed as it happens so that a
killed run keeps its log:

- ``{"kind": "step", "epoch", "step", "loss", "loss_cls", "loss_loc", "lr", "pairs_per_s",
  ...}`` for each optimiser step (``step`` counts steps over the whole run, from 0);
- ``{"kind": "epoch", "epoch", "loss", "val_auc", "seconds", "skipped_frames", ...}`` at the
  end of each epoch (``val_auc`` is ``null`` without validation).

Extra numeric fields are kept as given. A number that is not finite (a diverged loss) is
written as ``null``, so that every line stays strict JSON.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Dict, List, Optional, Type, Union

from .checkpoints import LOG_FILE, TENSORBOARD_DIR, write_atomically

PathLike = Union[str, "os.PathLike[str]"]

_PANEL_HEIGHT_IN = 3.5
_FIGURE_WIDTH_IN = 8.0
_DPI = 100
_STEP_COLOUR = "tab:blue"
_EPOCH_COLOUR = "tab:orange"
_AUC_COLOUR = "tab:green"
_BEST_COLOUR = "tab:red"


class RunLog:
    """The log of one training run in ``out_dir`` (a context manager; :meth:`close` ends it).

    ``enabled``: false on every distributed rank but 0, which then writes nothing at all.
    ``tensorboard``: also write TensorBoard events under ``out_dir/tensorboard`` when the
    ``tensorboard`` package is installed (the ``train`` extra); silently none otherwise, see
    :attr:`tensorboard_active`. ``resume``: continue the log of an interrupted run at epoch
    ``start_epoch``: its lines of earlier epochs are kept, those of ``start_epoch`` and later
    (written after the checkpoint the run resumes from) are dropped. Without ``resume`` the
    log starts empty.
    """

    def __init__(self, out_dir: PathLike, enabled: bool = True, tensorboard: bool = True,
                 resume: bool = False, start_epoch: int = 0) -> None:
        if isinstance(start_epoch, bool) or not isinstance(start_epoch, int) or start_epoch < 0:
            raise ValueError(f"start_epoch must be an int >= 0, got {start_epoch!r}")
        self.path = Path(os.fspath(out_dir)) / LOG_FILE
        self._sink: Optional[IO[str]] = None
        self._writer: Any = None
        self._last_step = -1
        if not enabled:
            return
        kept = _records_before(self.path, start_epoch) if resume else []
        self._last_step = max((r["step"] for r in kept if r.get("kind") == "step"
                               and isinstance(r.get("step"), int)), default=-1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume:
            text = "".join(json.dumps(record) + "\n" for record in kept)
            write_atomically(self.path, lambda sink: sink.write(text.encode("utf-8")))
        self._sink = open(self.path, "a" if resume else "w", encoding="utf-8")
        if tensorboard:
            self._writer = _summary_writer(self.path.parent / TENSORBOARD_DIR,
                                           purge_step=self._last_step + 1 if resume else None)

    @property
    def tensorboard_active(self) -> bool:
        """Whether TensorBoard event files are being written."""
        return self._writer is not None

    def log_step(self, epoch: int, step: int, loss: float, loss_cls: float, loss_loc: float,
                 lr: float, pairs_per_s: float, **extra: float) -> None:
        """Record one optimiser step (``step``: its index over the whole run)."""
        values = _numbers(dict(loss=loss, loss_cls=loss_cls, loss_loc=loss_loc, lr=lr,
                               pairs_per_s=pairs_per_s, **extra))
        self._last_step = max(self._last_step, int(step))
        self._record({"kind": "step", "epoch": int(epoch), "step": int(step), **values},
                     "train", int(step))

    def log_epoch(self, epoch: int, loss: float, val_auc: Optional[float], seconds: float,
                  skipped_frames: int, **extra: float) -> None:
        """Record the end of an epoch: its mean loss, the validation success AUC (``None``
        without validation), its duration and the frames that could not be read."""
        values = _numbers(dict(loss=loss, seconds=seconds, **extra))
        auc = None if val_auc is None else _numbers({"val_auc": val_auc})["val_auc"]
        record = {"kind": "epoch", "epoch": int(epoch), "loss": values.pop("loss"),
                  "val_auc": auc, "seconds": values.pop("seconds"),
                  "skipped_frames": int(skipped_frames), **values}
        self._record(record, "epoch", max(self._last_step, 0))
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Close the log file and the TensorBoard writer (again: nothing)."""
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> "RunLog":
        return self

    def __exit__(self, kind: Optional[Type[BaseException]], error: Optional[BaseException],
                 trace: Optional[TracebackType]) -> None:
        self.close()

    def _record(self, record: Dict[str, Any], group: str, step: int) -> None:
        if self._sink is None:
            return
        self._sink.write(json.dumps(record, allow_nan=False) + "\n")
        self._sink.flush()
        if self._writer is not None:
            for key, value in record.items():
                if key not in ("kind", "epoch", "step") and value is not None:
                    self._writer.add_scalar(f"{group}/{key}", value, step)


def read_log(log_path: PathLike) -> List[Dict[str, Any]]:
    """The records of a ``log.jsonl`` in order; a line that is not a JSON object (the half line
    of a killed run) is left out."""
    file = Path(os.fspath(log_path))
    if not file.is_file():
        raise FileNotFoundError(f"log_path: training log {file} not found")
    records = []
    for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def plot_curves(log_path: PathLike, png_path: PathLike) -> Path:
    """Draw a run's curves from its log into ``png_path`` and return that path.

    Top panel: the training loss of every step and each epoch's mean loss (at the epoch's last
    step). Bottom panel, only when the log holds validation results: the success AUC of each
    epoch with the best epoch marked. A log without any step or epoch record is a
    ``ValueError``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = read_log(log_path)
    steps = [r for r in records if r.get("kind") == "step" and _plottable(r, "step", "loss")]
    epochs = [r for r in records if r.get("kind") == "epoch" and isinstance(r.get("epoch"), int)]
    if not steps and not epochs:
        raise ValueError(f"log_path: {log_path} holds no step or epoch record to plot")
    validated = [r for r in epochs if _plottable(r, "val_auc")]
    panels = 2 if validated else 1
    figure = Figure(figsize=(_FIGURE_WIDTH_IN, _PANEL_HEIGHT_IN * panels), dpi=_DPI)
    FigureCanvasAgg(figure)
    _draw_loss(figure.add_subplot(panels, 1, 1), steps, epochs)
    if validated:
        _draw_auc(figure.add_subplot(panels, 1, 2), validated)
    figure.tight_layout()
    target = Path(os.fspath(png_path))
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format="png")
    return target


def _draw_loss(axes: Any, steps: List[Dict[str, Any]], epochs: List[Dict[str, Any]]) -> None:
    last_step: Dict[int, int] = {}
    for record in steps:
        last_step[record["epoch"]] = max(last_step.get(record["epoch"], -1), record["step"])
    means = [(last_step[r["epoch"]] if steps else r["epoch"], r["loss"]) for r in epochs
             if _plottable(r, "loss") and (r["epoch"] in last_step or not steps)]
    if steps:
        axes.plot([r["step"] for r in steps], [r["loss"] for r in steps], color=_STEP_COLOUR,
                  linewidth=1.2, label="loss per step")
    if means:
        axes.plot([x for x, _ in means], [y for _, y in means], color=_EPOCH_COLOUR,
                  marker="o", label="epoch mean")
    axes.set_title("Training loss")
    axes.set_xlabel("step" if steps else "epoch")
    axes.set_ylabel("loss")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right")


def _draw_auc(axes: Any, validated: List[Dict[str, Any]]) -> None:
    from matplotlib.ticker import MaxNLocator

    x = [r["epoch"] for r in validated]
    y = [r["val_auc"] for r in validated]
    best = max(range(len(y)), key=y.__getitem__)
    axes.plot(x, y, color=_AUC_COLOUR, marker="o", label="validation success AUC")
    axes.plot([x[best]], [y[best]], linestyle="none", marker="*", markersize=16,
              color=_BEST_COLOUR, label=f"best: epoch {x[best]}, AUC {y[best]:.3f}")
    axes.set_title("Validation")
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("success AUC")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")


def _plottable(record: Dict[str, Any], *keys: str) -> bool:
    return all(isinstance(record.get(k), (int, float)) and not isinstance(record.get(k), bool)
               for k in keys)


def _numbers(values: Dict[str, Any]) -> Dict[str, Optional[float]]:
    """``values`` as floats (``None`` where not finite); a value that is no number is a
    ``ValueError`` naming its field."""
    converted: Dict[str, Optional[float]] = {}
    for key, value in values.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be a number, got {value!r}") from None
        converted[key] = number if math.isfinite(number) else None
    return converted


def _records_before(path: Path, start_epoch: int) -> List[Dict[str, Any]]:
    """The log's records of epochs before ``start_epoch`` (all of them when none says its
    epoch); an absent log has none."""
    if not path.is_file():
        return []
    return [r for r in read_log(path)
            if not isinstance(r.get("epoch"), int) or r["epoch"] < start_epoch]


def _summary_writer(folder: Path, purge_step: Optional[int]) -> Any:
    """A TensorBoard ``SummaryWriter`` on ``folder``, or ``None`` when tensorboard is not
    installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(folder), purge_step=purge_step)
