"""The public tracking API: ``build_tracker`` -> ``Tracker.init`` / ``Tracker.update``."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .backends import BACKENDS as BACKEND_LOADERS
from .config import FAMILIES, ModelConfig
from .errors import NotInitializedError
from .geometry import Box, box_to_center, center_to_box
from .inputs import as_bgr_frame, as_box
from .loops import LongTermLoop, NetworkRunner, TrackingLoop
from .loops.base import State
from .zoo import get_config, get_record

#: Names of the backends, in the order the commands list them.
BACKENDS = BACKEND_LOADERS.names()


@dataclass(frozen=True)
class TrackResult:
    """One frame's answer.

    ``box``: ``(x, y, w, h)`` floats, pixels, (0, 0) = top-left corner of the frame.
    ``score``: confidence in [0, 1] (foreground probability for RPN/NanoTrack models,
    sigmoid of the response peak for SiamFC; while searching, the best re-detection
    candidate's). ``lost``: ``score`` is below the model's ``lost_threshold``, or the tracker
    is searching; the box is then the tracker's best guess (with ``long_term``, the last
    confident box, held). ``searching``: a long-term tracker has lost the target and is
    re-detecting it (always false with ``long_term=False``).
    """

    box: Box
    score: float
    lost: bool
    searching: bool = False

    @classmethod
    def of(
        cls, state: State, score: float, config: ModelConfig, searching: bool = False
    ) -> "TrackResult":
        """The result for a loop's ``(cx, cy, w, h)`` state and score."""
        return cls(
            box=tuple(float(v) for v in center_to_box(*state)),
            score=score,
            lost=searching or score < config.tracking.lost_threshold,
            searching=searching,
        )


def check_frame_size(frame: np.ndarray, expected: Tuple[int, int], restart: str) -> None:
    """``ValueError`` when ``frame`` is not ``expected`` = (height, width); ``restart`` says
    how to start over on a new video."""
    if frame.shape[:2] != expected:
        expected_h, expected_w = expected
        raise ValueError(
            f"frame is {frame.shape[1]}x{frame.shape[0]} but the tracker was initialised "
            f"on a {expected_w}x{expected_h} frame; {restart}"
        )


class Tracker:
    """Follows one target through a sequence of frames.

    Frames are H x W x 3 uint8 BGR arrays (grayscale H x W and BGRA H x W x 4 are
    converted). Call :meth:`init` with the first frame and the target box, then
    :meth:`update` with each following frame; calling :meth:`init` again restarts.
    Different trackers may run in different threads; one tracker serialises its calls.
    """

    def __init__(self, config: ModelConfig, runner: NetworkRunner) -> None:
        self.config = config
        self._runner = runner
        self._loop = new_loop(config, runner)
        self._frame_shape: Optional[Tuple[int, int]] = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def initialized(self) -> bool:
        return self._frame_shape is not None

    def clone(self) -> "Tracker":
        """A new, uninitialised tracker sharing this one's network (no weights reload)."""
        return Tracker(self.config, self._runner)

    def init(self, frame: np.ndarray, box: Box) -> None:
        """Start tracking the object inside ``box = (x, y, w, h)`` in ``frame``.

        Raises ``ValueError`` for a frame that is not an image, and for a box that is not
        four finite numbers, has ``w <= 0`` or ``h <= 0``, or lies entirely outside the frame.
        """
        frame = as_bgr_frame(frame, "frame")
        box = as_box(box, frame.shape, "box")
        with self._lock:
            self._frame_shape = None
            self._loop.start(frame, box_to_center(box))
            self._frame_shape = frame.shape[:2]

    def update(self, frame: np.ndarray) -> TrackResult:
        """Locate the target in the next ``frame``.

        Raises :class:`~tracker.NotInitializedError` before :meth:`init`, and
        ``ValueError`` when the frame is not an image or its size differs from the
        frame given to :meth:`init`.
        """
        frame = as_bgr_frame(frame, "frame")
        with self._lock:
            if self._frame_shape is None:
                raise NotInitializedError("update() called before init(); call init(frame, box) first")
            check_frame_size(frame, self._frame_shape, "call init() again for a new video")
            state, score = self._loop.step(frame)
            searching = self._loop.searching
        return TrackResult.of(state, score, self.config, searching)


def new_loop(config: ModelConfig, runner: NetworkRunner) -> TrackingLoop:
    """A fresh tracking loop of ``config``'s family on ``runner`` (inside a
    :class:`~tracker.loops.LongTermLoop` when ``config.tracking.long_term``)."""
    family_loop = FAMILIES[config.family].loop.resolve()
    loop = family_loop(config.tracking, runner, config.network.input_order)
    return LongTermLoop(loop) if config.tracking.long_term else loop


def build_tracker(
    model: Union[str, ModelConfig],
    weights: Optional[Union[str, "os.PathLike[str]"]] = None,
    *,
    backend: str = "torch",
    device: Optional[Any] = None,
    threads: Optional[Union[int, Sequence[int]]] = None,
    spinning: Optional[bool] = None,
    **overrides: Any,
) -> Tracker:
    """A ready tracker for a model name (``tracker.list_models()``) or a config.

    ``weights``: a checkpoint file (torch) or an export folder (onnxruntime); ``None``
    looks the model's published file up (``$TRACKER_WEIGHTS``, the project's ``weights/``,
    the user cache, then a download where the model's record has a URL).
    ``overrides`` replace tracking hyper-parameters, e.g. ``window_influence=0.4``.
    ``device`` (torch backend) is a torch device such as ``"cuda:0"``. ``threads`` fixes the
    onnxruntime session's intra-op threads (a list of counts: each search runs on the one
    that has been fastest lately) and ``spinning`` whether they spin between operators; ``None`` takes the model record's :class:`~tracker.zoo.CpuPolicy` (NanoTrack:
    one or two threads, whichever has been faster lately, spinning). Both apply to this
    tracker's sessions only; torch's pool is process-wide and left to the caller
    (``torch.set_num_threads``).
    """
    return Tracker(*load_network(model, weights, backend, device, threads, overrides, spinning))


def load_network(
    model: Union[str, ModelConfig],
    weights: Optional[Union[str, "os.PathLike[str]"]],
    backend: str,
    device: Optional[Any],
    threads: Optional[Union[int, Sequence[int]]],
    overrides: Dict[str, Any],
    spinning: Optional[bool] = None,
) -> Tuple[ModelConfig, NetworkRunner]:
    """The config (with ``overrides``) and the loaded network runner that
    :func:`build_tracker` and :func:`~tracker.build_multi_tracker` build on."""
    config = get_config(model) if isinstance(model, str) else model
    if not isinstance(config, ModelConfig):
        raise ValueError(f"model must be a model name or a ModelConfig, got {type(model).__name__}")
    config = config.with_tracking(**overrides)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    load_runner = BACKEND_LOADERS.entry(backend).resolve()
    return config, load_runner(config, weights, device=device, threads=threads, spinning=spinning)


def describe(name: str) -> Dict[str, Any]:
    """What a user needs to choose a model, from its record: description, config, source,
    licence and published files."""
    record = get_record(name)
    return {
        "name": record.name,
        "family": record.config.family,
        "description": record.config.description,
        **record.to_dict(),
    }
