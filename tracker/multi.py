"""Several targets in one frame, one network call per frame: :class:`MultiTracker`.

Every target keeps its own tracking loop (state, kernel), exactly as a :class:`Tracker`
does; only the network call is shared. Each frame, every target cuts its search crops, the
crops of all targets with the same crop size are stacked into one batch, their kernels are
stacked into one kernel batch, and the network scores the batch in one call (the
correlations run as grouped convolutions over the batch). Models whose search size is fixed
make one call per frame; DaSiamRPN-BIG, whose search size depends on each target's size,
makes one call per size in use (at most two).
"""

from __future__ import annotations

import itertools
import os
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .api import TrackResult, check_frame_size, load_network, new_loop
from .config import ModelConfig
from .errors import UnknownTargetError
from .geometry import Box, box_to_center
from .inputs import as_bgr_frame, as_box
from .loops import NetworkRunner, TrackingLoop
from .loops.base import to_blob

_Group = Tuple[int, ...]
#: Stacked kernels kept per (target, crop count) grouping.
_KERNEL_CACHE_SIZE = 16


class MultiTracker:
    """Follows any number of targets through one sequence of frames.

    :meth:`add` starts a target at any frame (its kernel comes from that frame) and returns
    its id: 0, 1, 2, ... in the order added, never reused by this tracker, also after
    :meth:`clear`. :meth:`update` locates every target in the next frame and returns
    ``{id: TrackResult}``; each target's results equal those of its own :class:`Tracker`
    fed the same frames. Frames and boxes follow :class:`Tracker`'s rules; all targets share
    one frame size, set by the first :meth:`add` and forgotten when no target is left.
    One tracker serialises its calls.
    """

    def __init__(self, config: ModelConfig, runner: NetworkRunner) -> None:
        self.config = config
        self._runner = runner
        self._loops: Dict[int, TrackingLoop] = {}
        self._ids = itertools.count()
        self._frame_shape: Optional[Tuple[int, int]] = None
        self._kernels: Dict[Tuple[Tuple[int, int], ...], Any] = {}
        self._buffers: Dict[Tuple[int, ...], np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def targets(self) -> Tuple[int, ...]:
        """The ids of the targets being tracked, in the order they were added."""
        return tuple(self._loops)

    def add(self, frame: np.ndarray, box: Box) -> int:
        """Start tracking the object inside ``box = (x, y, w, h)`` in ``frame``; its id.

        Raises ``ValueError`` for a frame that is not an image or whose size differs from
        the other targets' frames, and for a box that :meth:`Tracker.init` refuses; no
        target is added then. Two targets may have the same box: they are tracked
        independently and give the same results.
        """
        frame = as_bgr_frame(frame, "frame")
        box = as_box(box, frame.shape, "box")
        with self._lock:
            if self._frame_shape is not None:
                check_frame_size(frame, self._frame_shape, "clear() first for a new video")
            loop = new_loop(self.config, self._runner)
            loop.start(frame, box_to_center(box))
            target_id = next(self._ids)
            self._loops[target_id] = loop
            self._frame_shape = frame.shape[:2]
            self._kernels.clear()
        return target_id

    def remove(self, target_id: int) -> None:
        """Stop tracking ``target_id``; :class:`~tracker.UnknownTargetError` when no target
        has that id (never added, or already removed)."""
        with self._lock:
            if target_id not in self._loops:
                known = ", ".join(map(str, self._loops)) or "none"
                raise UnknownTargetError(
                    f"target_id {target_id!r} is not a tracked target (tracked: {known})"
                )
            del self._loops[target_id]
            self._kernels.clear()
            if not self._loops:
                self._frame_shape = None

    def clear(self) -> None:
        """Stop tracking every target (ids are not reused afterwards)."""
        with self._lock:
            self._loops.clear()
            self._kernels.clear()
            self._buffers.clear()
            self._frame_shape = None

    def update(self, frame: np.ndarray) -> Dict[int, TrackResult]:
        """Locate every target in the next ``frame``: ``{id: TrackResult}``, in
        :attr:`targets` order; ``{}`` when there is no target.

        Raises ``ValueError`` when the frame is not an image or its size differs from the
        frames the targets were added on.
        """
        frame = as_bgr_frame(frame, "frame")
        with self._lock:
            if not self._loops:
                return {}
            check_frame_size(frame, self._frame_shape, "clear() first for a new video")
            crops = {target_id: loop.search(frame) for target_id, loop in self._loops.items()}
            outputs: Dict[int, Dict[str, np.ndarray]] = {}
            for group in _groups_by_crop_size(crops):
                outputs.update(self._track_group(group, crops))
            results = {}
            for target_id, loop in self._loops.items():
                state, score = loop.locate(frame, outputs[target_id])
                results[target_id] = TrackResult.of(state, score, self.config, loop.searching)
            return results

    def _track_group(
        self, group: _Group, crops: Dict[int, List[np.ndarray]]
    ) -> Dict[int, Dict[str, np.ndarray]]:
        """One network call for the crops of the targets in ``group``, split per target."""
        counts = [len(crops[target_id]) for target_id in group]
        if len(group) == 1:
            kernel = self._loops[group[0]].kernel
        else:
            # Long-term targets change their crop count while searching: the stacked kernel
            # depends on the counts too, and the cache stays small.
            key = tuple(zip(group, counts))
            kernel = self._kernels.get(key)
            if kernel is None:
                if len(self._kernels) >= _KERNEL_CACHE_SIZE:
                    self._kernels.clear()
                kernel = self._runner.stack([self._loops[t].kernel for t in group], counts)
                self._kernels[key] = kernel
        patches = [patch for target_id in group for patch in crops[target_id]]
        height, width = patches[0].shape[:2]
        shape = (len(patches), 3, height, width)
        # A buffer per batch shape, reused: a fresh one of some MB each frame costs more to
        # fault in than to fill.
        buffer = self._buffers.get(shape)
        if buffer is None:
            buffer = self._buffers[shape] = np.empty(shape, np.float32)
        blob = to_blob(*patches, input_order=self.config.network.input_order, out=buffer)
        outputs = self._runner.track(kernel, blob)
        starts = np.cumsum([0] + counts)
        return {
            target_id: {name: value[start:end] for name, value in outputs.items()}
            for target_id, start, end in zip(group, starts[:-1], starts[1:])
        }


def _groups_by_crop_size(crops: Dict[int, List[np.ndarray]]) -> List[_Group]:
    """Target ids grouped by the size of their search crops, in target order."""
    groups: Dict[Tuple[int, ...], List[int]] = {}
    for target_id, patches in crops.items():
        groups.setdefault(patches[0].shape, []).append(target_id)
    return [tuple(ids) for ids in groups.values()]


def build_multi_tracker(
    model: Union[str, ModelConfig],
    weights: Optional[Union[str, "os.PathLike[str]"]] = None,
    *,
    backend: str = "torch",
    device: Optional[Any] = None,
    threads: Optional[Union[int, Sequence[int]]] = None,
    spinning: Optional[bool] = None,
    **overrides: Any,
) -> MultiTracker:
    """A ready :class:`MultiTracker` with no targets yet; the arguments are those of
    :func:`~tracker.build_tracker`, and every target uses the same tracking ``overrides``."""
    return MultiTracker(
        *load_network(model, weights, backend, device, threads, overrides, spinning)
    )
