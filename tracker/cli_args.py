"""Command-line helpers shared by the commands (demo, export, benchmark) and the examples: one
spelling of each value a user types, one error message naming the option, one rule for which
backend takes a thread count."""

from __future__ import annotations

import argparse
import shlex
import tempfile
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple, Union


class OptionError(argparse.ArgumentTypeError, ValueError):
    """A value typed on the command line that does not fit its option.

    An ``ArgumentTypeError`` so argparse prints the message itself when the parser is used as
    ``type=``, and a ``ValueError`` for callers that parse a value after argparse."""


def _named(option: Optional[str], message: str) -> str:
    return f"{option}: {message}" if option else message


def parse_box(text: str, option: Optional[str] = None) -> Tuple[float, float, float, float]:
    """``x,y,w,h`` as four floats (range checks happen against the frame).

    ``option`` names the argument in the error; leave it out under argparse ``type=``, which
    names the argument itself."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise OptionError(_named(option, f"expected four comma-separated numbers x,y,w,h, "
                                         f"got {text!r}"))
    return values  # type: ignore[return-value]


def positive_int(text: Union[str, int], option: Optional[str] = None) -> int:
    """A count of at least 1 written as an integer ("3"); "0", "-1", "1.5" and bools are refused.

    Usable as argparse ``type=``; ``option`` names the argument when called directly."""
    value: Optional[int] = None
    if isinstance(text, str):
        try:
            value = int(text.strip())
        except ValueError:
            value = None
    elif isinstance(text, int) and not isinstance(text, bool):
        value = text
    if value is None or value < 1:
        raise OptionError(_named(option, f"expected a positive integer, got {text!r}"))
    return value


def ensure_writable_dir(path: Union[str, Path], option: str) -> Path:
    """Create ``path`` if needed and prove a file can be written in it, before any long work.

    A ``ValueError`` names ``option``, the folder and the reason (a file in the way, permission
    denied, read-only file system, ...)."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"{option}: {folder} is not a folder (it or a parent is a file)") from None
    except OSError as error:
        raise ValueError(f"{option}: cannot create {folder}: {error.strerror}") from None
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(f"{option}: cannot write to {folder}: {error.strerror}") from None
    return folder


def backend_options(backend: str, threads: Optional[int]) -> Dict[str, int]:
    """``build_tracker`` keyword arguments for a thread count.

    Only onnxruntime takes threads per session; torch's pool is process-wide, so the commands set
    it themselves (``set_thread_pools``) and the library never changes it behind their back."""
    return {"threads": threads} if backend == "onnxruntime" and threads else {}


def apply_thread_policy(model: str, backend: str, threads: Optional[int]) -> Optional[int]:
    """Thread pools for a command or an application tracking ``model`` on ``backend``:
    ``threads`` when given (:func:`set_thread_pools`); else, on torch, the model record's
    ``CpuPolicy.torch_threads`` (NanoTrack: 1), torch's pool being process-wide and so the
    application's to set. Returns the torch thread count set, if any."""
    if threads:
        set_thread_pools(threads, torch=backend == "torch")
        return threads if backend == "torch" else None
    if backend != "torch":
        return None
    from .zoo import cpu_policy, get_config

    count = cpu_policy(get_config(model)).torch_threads
    if count:
        import torch as torch_module

        torch_module.set_num_threads(count)
    return count


def set_thread_pools(count: int, *, torch: bool = True) -> None:
    """Set OpenCV's and (when ``torch``) torch's process-wide thread pools to ``count``."""
    import cv2

    cv2.setNumThreads(count)
    if torch:
        try:
            import torch as torch_module
        except ImportError:
            return
        torch_module.set_num_threads(count)


def quote_command(argv: Iterable[object]) -> str:
    """One shell line that reproduces ``argv`` (each part quoted as a POSIX shell needs)."""
    return " ".join(shlex.quote(str(part)) for part in argv)
