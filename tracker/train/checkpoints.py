"""What a training run keeps on disk, written so that a crash or Ctrl-C never costs a file.

A run folder holds:

- ``run.json``: the run's identity (model, recipe, data...), compared on ``--resume``;
- ``checkpoint.pth``: the latest full training state (model, optimiser, scheduler, epoch,
  random states...), replaced atomically at every epoch;
- ``best.pth`` and ``model.pth``: weights only, as a plain state dict in the published
  checkpoint key layout, so ``tracker.build_tracker(NAME, weights="DIR/model.pth")`` loads them
  (``best.pth``: the epoch of best validation AUC; ``model.pth``: the final weights);
- ``log.jsonl``, ``curves.png`` and ``tensorboard/``: see :mod:`tracker.train.report`.

Every ``.pth`` is written to a temporary file in the same folder, flushed to disk and renamed
over the previous one: a reader sees the old file or the new one, never half a file.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from ..cli_args import ensure_writable_dir
from ..errors import CheckpointError
from ..models.checkpoint import check_values
from .errors import TrainingError

RUN_FILE = "run.json"
CHECKPOINT_FILE = "checkpoint.pth"
BEST_FILE = "best.pth"
MODEL_FILE = "model.pth"
LOG_FILE = "log.jsonl"
CURVES_FILE = "curves.png"
TENSORBOARD_DIR = "tensorboard"

#: Everything the trainer writes in a run folder: ``--overwrite`` removes these and nothing else.
RUN_OUTPUTS = (RUN_FILE, CHECKPOINT_FILE, BEST_FILE, MODEL_FILE, LOG_FILE, CURVES_FILE,
               TENSORBOARD_DIR)

#: Identity fields a resume may change (dotted paths into the identity), each only upwards:
#: a run can be continued for more epochs than it first asked for.
RESUMABLE_FIELDS = ("epochs", "recipe.schedule.epochs")

_TEMP_SUFFIX = ".tmp"
_ABSENT = object()

PathLike = Union[str, "os.PathLike[str]"]


def save_checkpoint(path: PathLike, state: Mapping[str, Any]) -> None:
    """Write the training state ``state`` to ``path`` atomically (``torch.save`` format).

    A failure or an interrupt while writing (disk full, Ctrl-C) leaves the previous file as it
    was and no temporary file behind; a write error is a :class:`CheckpointError` naming the
    file.
    """
    if not isinstance(state, Mapping):
        raise ValueError(f"state must be a mapping (a dict of the training state), got "
                         f"{type(state).__name__}")
    _atomic_save(dict(state), Path(os.fspath(path)))


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """The training state saved by :func:`save_checkpoint` (tensors on the CPU).

    Loaded with ``weights_only=False``: the file is this trainer's own output, read back from
    the folder the user names with ``--resume``, and it holds what the weights-only unpickler
    refuses (numpy random states, optimiser and scheduler states with their Python values).
    Published or downloaded checkpoints never come through here: they are read with
    :func:`tracker.models.checkpoint.read_checkpoint`, in weights-only mode. A missing,
    truncated or corrupt file is a :class:`CheckpointError` naming it.
    """
    file = Path(os.fspath(path))
    if not file.is_file():
        raise CheckpointError(f"checkpoint {file} not found (nothing to resume from)")
    try:
        content = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises many types for damaged files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CheckpointError(
            f"checkpoint {file} cannot be read: it is truncated or corrupt "
            f"({type(error).__name__}{': ' + reason if reason else ''}); resume from another "
            f"run folder or start again with --overwrite"
        ) from None
    if not isinstance(content, dict):
        raise CheckpointError(f"checkpoint {file} holds a {type(content).__name__}, not a "
                              f"training state dict")
    return content


def save_model_weights(path: PathLike, network: nn.Module) -> None:
    """Write ``network``'s weights to ``path`` atomically as a plain state dict on the CPU.

    ``network`` is a :class:`~tracker.models.SiameseNetwork`, possibly wrapped in
    ``DistributedDataParallel``; its ``state_dict()`` has the published key layout, so the file
    loads with ``tracker.build_tracker(NAME, weights=path)``. Weights holding NaN or infinite
    values (a diverged run) are a :class:`CheckpointError` and nothing is written.
    """
    if not isinstance(network, nn.Module):
        raise ValueError(f"network must be a torch module, got {type(network).__name__}")
    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    module = network.module if isinstance(network, wrappers) else network
    file = Path(os.fspath(path))
    state = {key: value.detach().cpu() for key, value in module.state_dict().items()}
    check_values(state, f"weights for {file}")
    _atomic_save(state, file)


def latest_checkpoint(out_dir: PathLike) -> Optional[Path]:
    """``out_dir/checkpoint.pth`` when it exists (the state after the last finished epoch, or
    at the Ctrl-C that stopped the run), else ``None``."""
    candidate = Path(os.fspath(out_dir)) / CHECKPOINT_FILE
    return candidate if candidate.is_file() else None


def prepare_run_dir(out_dir: PathLike, identity: Mapping[str, Any], overwrite: bool = False,
                    resume: bool = False) -> None:
    """Make ``out_dir`` the folder of the run described by ``identity`` and write its
    ``run.json``.

    ``identity``: JSON-compatible values (paths are written as text) naming what makes the
    run itself: model name, recipe dict, data specs... A folder that already holds a run's
    files is refused (:class:`TrainingError`) unless ``overwrite`` (its run files, listed in
    :data:`RUN_OUTPUTS`, are deleted; other files stay) or ``resume`` (the saved identity must
    equal ``identity`` except :data:`RESUMABLE_FIELDS`, which may only grow). ``out_dir`` that is
    a file or cannot be written is a ``ValueError`` naming it.
    """
    if overwrite and resume:
        raise ValueError("overwrite and resume exclude each other: --overwrite starts the run "
                         "again, --resume continues it")
    folder = Path(os.fspath(out_dir))
    ensure_writable_dir(folder, "--out")
    wanted = _plain(identity)
    run_file = folder / RUN_FILE
    if resume:
        _check_resume(folder, run_file, wanted)
    elif overwrite:
        _remove_run_outputs(folder)
    else:
        _refuse_another_run(folder, run_file, wanted)
    text = json.dumps(wanted, indent=1, sort_keys=True) + "\n"
    try:
        write_atomically(run_file, lambda sink: sink.write(text.encode("utf-8")))
    except OSError as error:
        raise TrainingError(f"cannot write {run_file}: {error.strerror or error}") from None


def _plain(identity: Mapping[str, Any]) -> Dict[str, Any]:
    """``identity`` as plain JSON values (tuples become lists, paths text)."""
    if not isinstance(identity, Mapping):
        raise ValueError(f"identity must be a mapping, got {type(identity).__name__}")

    def encode(value: Any) -> Any:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        raise ValueError(f"identity must hold JSON values (numbers, text, lists, dicts), got a "
                         f"{type(value).__name__}: {value!r}")

    return json.loads(json.dumps(dict(identity), default=encode))


def _check_resume(folder: Path, run_file: Path, wanted: Dict[str, Any]) -> None:
    if not run_file.is_file():
        raise TrainingError(f"cannot resume {folder}: it holds no {RUN_FILE}, so no training run "
                            f"to continue (start it without --resume)")
    saved = _read_identity(run_file)
    if latest_checkpoint(folder) is None:
        raise TrainingError(f"cannot resume {folder}: it holds no {CHECKPOINT_FILE} (the run "
                            f"stopped before saving one); start it again with --overwrite")
    for field, before, now in _differences(saved, wanted):
        if field in RESUMABLE_FIELDS and _grows(before, now):
            continue
        if field in RESUMABLE_FIELDS:
            raise TrainingError(f"cannot resume {folder}: {field} may only grow on a resume "
                                f"(the run has {_short(before)}, now {_short(now)})")
        raise TrainingError(f"cannot resume {folder}: {field} differs (the run has "
                            f"{_short(before)}, now {_short(now)}); resume with the run's "
                            f"settings or start a new run in another folder")


def _refuse_another_run(folder: Path, run_file: Path, wanted: Dict[str, Any]) -> None:
    present = [name for name in RUN_OUTPUTS if name != RUN_FILE and (folder / name).exists()]
    differs = run_file.exists() and _read_identity(run_file) != wanted
    if present or differs:
        what = ", ".join(([RUN_FILE] if run_file.exists() else []) + present)
        raise TrainingError(f"{folder} holds another training run ({what}): pass --overwrite to "
                            f"replace it or --resume {folder} to continue it")


def _remove_run_outputs(folder: Path) -> None:
    for name in RUN_OUTPUTS:
        target = folder / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    for leftover in folder.glob(f".*{_TEMP_SUFFIX}"):
        if any(leftover.name.startswith(f".{name}.") for name in RUN_OUTPUTS):
            leftover.unlink()


def _read_identity(run_file: Path) -> Dict[str, Any]:
    try:
        content = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TrainingError(f"{run_file} cannot be read ({error}); start the run again with "
                            f"--overwrite") from None
    if not isinstance(content, dict):
        raise TrainingError(f"{run_file} is not a run identity (a JSON object); start the run "
                            f"again with --overwrite")
    return content


def _differences(before: Any, now: Any, path: str = "") -> List[Tuple[str, Any, Any]]:
    """``(dotted path, before, now)`` for every leaf that differs, in key order."""
    if isinstance(before, dict) and isinstance(now, dict):
        found: List[Tuple[str, Any, Any]] = []
        for key in sorted(set(before) | set(now)):
            child = f"{path}.{key}" if path else str(key)
            if key not in before or key not in now:
                found.append((child, before.get(key, _ABSENT), now.get(key, _ABSENT)))
            else:
                found.extend(_differences(before[key], now[key], child))
        return found
    if isinstance(before, list) and isinstance(now, list) and len(before) == len(now):
        found = []
        for index, (old, new) in enumerate(zip(before, now)):
            found.extend(_differences(old, new, f"{path}[{index}]"))
        return found
    return [] if before == now else [(path, before, now)]


def _grows(before: Any, now: Any) -> bool:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (before, now))
    return numbers and math.isfinite(now) and now >= before


def _short(value: Any, limit: int = 80) -> str:
    if value is _ABSENT:
        return "no such field"
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _atomic_save(content: Any, file: Path) -> None:
    try:
        write_atomically(file, lambda sink: torch.save(content, sink))
    except OSError as error:
        raise CheckpointError(f"cannot write {file}: {error.strerror or error} (the previous "
                              f"file, if any, is unchanged)") from None


def write_atomically(file: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Call ``write(binary file)`` on a temporary file beside ``file``, fsync it and rename it
    over ``file``: readers see the old content or the new, never a part. On any failure or
    interrupt the temporary file is removed and the error raised again."""
    handle, temp_name = tempfile.mkstemp(prefix=f".{file.name}.", suffix=_TEMP_SUFFIX,
                                         dir=file.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as sink:
            write(sink)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temp, file)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _sync_folder(file.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); best effort where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
