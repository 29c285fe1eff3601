"""Template / search frame pairs drawn from annotated sequences, as the references draw them.

A pair is a pure function of ``(seed, epoch, index, attempt)``: data-loader workers, resumed
runs and distributed ranks that ask for the same index get the same pair, whatever process
asks and in whatever order. The trainer assigns the indices (rank ``r`` takes its own), and
``attempt`` draws a deterministic replacement when a frame of a pair cannot be decoded.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .sequence import FrameError, TrainSequence

#: independent random streams of one pair (:func:`pair_rng`)
PURPOSES: Tuple[str, ...] = ("pair", "augment", "targets")


@dataclass(frozen=True)
class PairSettings:
    """How pairs are drawn and which frames may be drawn.

    ``frame_range``: the search frame is at most this many frames from the template.
    ``negative_ratio``: probability that the search frame comes from another sequence.
    ``template_first``: the earlier frame of a pair is the template (siamfc-pytorch sorts
    them). ``allow_same_frame``: the search frame may be the template frame (pysot); when
    false it is only where the template has no other sampleable frame within range.
    ``min_sequence_frames``: sequences with fewer sampleable frames are left out.
    Size filter (siamfc-pytorch's; 0 or None switches a bound off): box sides in
    ``[min_size, max_size]`` pixels and in ``[min_frame_fraction, max_frame_fraction]`` of the
    frame's sides, aspect ratio w / h within ``[1 / max_aspect, max_aspect]``.
    """

    frame_range: int = 100
    negative_ratio: float = 0.2
    template_first: bool = False
    allow_same_frame: bool = True
    min_sequence_frames: int = 1
    min_size: float = 0.0
    max_size: Optional[float] = None
    min_frame_fraction: float = 0.0
    max_frame_fraction: Optional[float] = None
    max_aspect: Optional[float] = None

    def __post_init__(self) -> None:
        _check_int(self, "frame_range", 0)
        _check_int(self, "min_sequence_frames", 1)
        for name in ("template_first", "allow_same_frame"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"pairs.{name} must be true or false, got {getattr(self, name)!r}")
        _check_number(self, "negative_ratio", 0.0, 1.0)
        _check_number(self, "min_size", 0.0, math.inf)
        _check_number(self, "min_frame_fraction", 0.0, 1.0)
        _check_number(self, "max_size", 0.0, math.inf, optional=True)
        _check_number(self, "max_frame_fraction", 0.0, 1.0, optional=True)
        _check_number(self, "max_aspect", 1.0, math.inf, optional=True)
        for low, high in (("min_size", "max_size"), ("min_frame_fraction", "max_frame_fraction")):
            if getattr(self, high) is not None and getattr(self, high) < getattr(self, low):
                raise ValueError(f"pairs.{high} ({getattr(self, high)}) must not be below "
                                 f"pairs.{low} ({getattr(self, low)})")

    @classmethod
    def siamfc(cls) -> "PairSettings":
        """siamfc-pytorch: two different frames fewer than 100 apart, the earlier one the
        template, no negatives; targets of 20 to 500 px, 1 % to 50 % of the frame, aspect
        within 1:4; sequences with fewer than two such frames are skipped."""
        return cls(frame_range=99, negative_ratio=0.0, template_first=True,
                   allow_same_frame=False, min_sequence_frames=2, min_size=20.0,
                   max_size=500.0, min_frame_fraction=0.01, max_frame_fraction=0.5,
                   max_aspect=4.0)

    @classmethod
    def pysot(cls, deep: bool = False) -> "PairSettings":
        """pysot (VID's frame range 100): negatives 0.05 for AlexNet, 0.2 for the deep
        backbones (ResNet-50, MobileNetV2); no size filter."""
        return cls(frame_range=100, negative_ratio=0.2 if deep else 0.05)

    @classmethod
    def nanotrack(cls) -> "PairSettings":
        """NanoTrack v2 (``configv2.yaml``): frame range 100, negatives 0.2."""
        return cls(frame_range=100, negative_ratio=0.2)


def _check_int(settings: PairSettings, name: str, low: int) -> None:
    value = getattr(settings, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"pairs.{name} must be an int >= {low}, got {value!r}")


def _check_number(settings: PairSettings, name: str, low: float, high: float,
                  optional: bool = False) -> None:
    value = getattr(settings, name)
    if optional and value is None:
        return
    wanted = f"a number in [{low:g}, {high:g}]" + (" or null (off)" if optional else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            low <= value <= high) or math.isnan(value):
        raise ValueError(f"pairs.{name} must be {wanted}, got {value!r}")
    object.__setattr__(settings, name, float(value))


@dataclass(frozen=True)
class Pair:
    """A template frame and a search frame: ``(sequence, 0-based frame index)`` each;
    ``negative`` when they show different targets (different sequences)."""

    template: Tuple[TrainSequence, int]
    search: Tuple[TrainSequence, int]
    negative: bool


def pair_rng(seed: int, epoch: int, index: int, attempt: int = 0,
             purpose: str = "pair") -> np.random.Generator:
    """The random stream of one pair for one ``purpose`` (one of :data:`PURPOSES`): drawing
    the frames, augmenting the crops, sampling the targets. Pure function of its arguments."""
    for name, value in (("seed", seed), ("epoch", epoch), ("index", index), ("attempt", attempt)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, got {purpose!r}")
    return np.random.default_rng(
        [int(seed), int(epoch), int(index), int(attempt), PURPOSES.index(purpose)])


def sampleable_frames(sequence: TrainSequence, settings: PairSettings) -> np.ndarray:
    """Sorted indices of the frames of ``sequence`` that may be drawn: visible (``valid``)
    and passing the size filter. Reads one frame for its size only when a frame-fraction
    bound is on; :class:`FrameError` when that frame cannot be read."""
    boxes = np.nan_to_num(sequence.boxes)
    w, h = boxes[:, 2], boxes[:, 3]
    keep = sequence.valid.copy()
    keep &= (w >= settings.min_size) & (h >= settings.min_size)
    if settings.max_size is not None:
        keep &= (w <= settings.max_size) & (h <= settings.max_size)
    if settings.max_aspect is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            aspect = w / h
        keep &= (aspect >= 1.0 / settings.max_aspect) & (aspect <= settings.max_aspect)
    if settings.min_frame_fraction > 0 or settings.max_frame_fraction is not None:
        frame_h, frame_w = sequence.frames.read(0).shape[:2]
        fraction_w, fraction_h = w / frame_w, h / frame_h
        keep &= (fraction_w >= settings.min_frame_fraction)
        keep &= (fraction_h >= settings.min_frame_fraction)
        if settings.max_frame_fraction is not None:
            keep &= (fraction_w <= settings.max_frame_fraction)
            keep &= (fraction_h <= settings.max_frame_fraction)
    return np.flatnonzero(keep)


@dataclass(frozen=True)
class _Dataset:
    sequences: Tuple[TrainSequence, ...]
    frames: Tuple[np.ndarray, ...]


class PairSampler:
    """Pairs from several datasets mixed by weight.

    ``datasets``: ``(sequences, weight)`` per dataset; ``names`` label them in messages
    (default: the kind prefix of their sequence names and their position). A pair picks a
    dataset with probability proportional to its weight, a sequence of it uniformly, a
    template frame uniformly among the sequence's sampleable frames, then a search frame
    uniformly among the sampleable frames within ``frame_range`` of it (or, for a negative
    pair, any sampleable frame of another sequence, drawn the same way).
    A dataset left without a sampleable frame is a ``ValueError`` saying what removed them.
    """

    def __init__(self, datasets: Sequence[Tuple[Sequence[TrainSequence], float]],
                 settings: PairSettings, names: Optional[Sequence[str]] = None) -> None:
        if not isinstance(settings, PairSettings):
            raise ValueError(f"settings must be a PairSettings, got {type(settings).__name__}")
        if len(datasets) == 0:
            raise ValueError("datasets must hold at least one (sequences, weight) pair")
        if names is not None and len(names) != len(datasets):
            raise ValueError(f"names must name each of the {len(datasets)} datasets, "
                             f"got {len(names)} names")
        self.settings = settings
        self.names = tuple(names) if names is not None else tuple(
            _default_name(sequences, i) for i, (sequences, _) in enumerate(datasets))
        weights = []
        self._datasets: List[_Dataset] = []
        empty = []
        for name, (sequences, weight) in zip(self.names, datasets):
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (
                    math.isfinite(weight) and weight > 0):
                raise ValueError(f"dataset {name}: weight must be a finite number > 0, "
                                 f"got {weight!r}")
            dataset, report = self._filtered(name, sequences)
            if dataset is None:
                empty.append(report)
            else:
                self._datasets.append(dataset)
                weights.append(float(weight))
        if empty:
            raise ValueError("; ".join(empty))
        self.weights = tuple(w / sum(weights) for w in weights)
        self._dataset_edges = np.cumsum(self.weights)
        # Every sequence's probability, for drawing a negative pair's search sequence.
        per_sequence = [p / len(d.sequences) for p, d in zip(self.weights, self._datasets)]
        self._sequence_probability = np.concatenate([
            np.full(len(d.sequences), p) for p, d in zip(per_sequence, self._datasets)])
        self._sequence_edges = np.cumsum(self._sequence_probability)
        self._first_sequence = np.cumsum([0] + [len(d.sequences) for d in self._datasets])
        if settings.negative_ratio > 0 and len(self._sequence_probability) < 2:
            raise ValueError(f"pairs.negative_ratio is {settings.negative_ratio} but negative "
                             "pairs need two sequences and only one has sampleable frames; "
                             "add data or set pairs.negative_ratio=0")

    def _filtered(self, name: str,
                  sequences: Sequence[TrainSequence]) -> Tuple[Optional[_Dataset], str]:
        """The dataset's usable sequences and frames, or None and what removed everything."""
        kept, frames = [], []
        total = invisible = filtered = short = unreadable = 0
        for sequence in sequences:
            total += len(sequence)
            invisible += int((~sequence.valid).sum())
            try:
                indices = sampleable_frames(sequence, self.settings)
            except FrameError as error:
                warnings.warn(f"{sequence.name}: left out, its frame size is unknown ({error})")
                unreadable += 1
                continue
            filtered += int(sequence.valid.sum()) - len(indices)
            if len(indices) < self.settings.min_sequence_frames:
                short += 1
                continue
            kept.append(sequence)
            frames.append(indices)
        if kept:
            return _Dataset(tuple(kept), tuple(frames)), ""
        s = self.settings
        return None, (
            f"dataset {name} has no sampleable frame: of {len(sequences)} sequence(s) and "
            f"{total} frame(s), {invisible} frame(s) are absent, occluded or have no box, "
            f"{filtered} fail the size filter (pairs.min_size={s.min_size:g}, "
            f"max_size={s.max_size}, min_frame_fraction={s.min_frame_fraction:g}, "
            f"max_frame_fraction={s.max_frame_fraction}, max_aspect={s.max_aspect}), "
            f"{short} sequence(s) keep fewer than pairs.min_sequence_frames="
            f"{s.min_sequence_frames} frame(s) and {unreadable} cannot be read"
        )

    @property
    def sequence_count(self) -> int:
        """Sequences that pairs are drawn from (after filtering)."""
        return len(self._sequence_probability)

    def pair(self, seed: int, epoch: int, index: int, attempt: int = 0) -> Pair:
        """Pair ``index`` of ``epoch`` in the run seeded ``seed``; ``attempt`` > 0 draws a
        replacement (the trainer asks for one when a frame of an earlier attempt fails)."""
        rng = pair_rng(seed, epoch, index, attempt, "pair")
        negative = bool(rng.random() < self.settings.negative_ratio)
        drawn = rng.random() * self._dataset_edges[-1]
        dataset = min(int(np.searchsorted(self._dataset_edges, drawn, side="right")),
                      len(self._datasets) - 1)
        local = int(rng.integers(len(self._datasets[dataset].sequences)))
        template_frames = self._datasets[dataset].frames[local]
        template = int(template_frames[rng.integers(len(template_frames))])
        template_sequence = self._datasets[dataset].sequences[local]
        if negative:
            other = self._other_sequence(int(self._first_sequence[dataset]) + local, rng)
            other_dataset = int(np.searchsorted(self._first_sequence, other, side="right")) - 1
            other_local = other - int(self._first_sequence[other_dataset])
            search_frames = self._datasets[other_dataset].frames[other_local]
            search = int(search_frames[rng.integers(len(search_frames))])
            return Pair((template_sequence, template),
                        (self._datasets[other_dataset].sequences[other_local], search), True)
        search = self._nearby(template_frames, template, rng)
        if self.settings.template_first and search < template:
            template, search = search, template
        return Pair((template_sequence, template), (template_sequence, search), False)

    def _other_sequence(self, excluded: int, rng: np.random.Generator) -> int:
        """A sequence drawn with its probability, ``excluded`` left out."""
        left_out = self._sequence_probability[excluded]
        start = self._sequence_edges[excluded] - left_out
        u = rng.random() * (self._sequence_edges[-1] - left_out)
        if u >= start:
            u += left_out
        chosen = int(np.searchsorted(self._sequence_edges, u, side="right"))
        chosen = min(chosen, len(self._sequence_edges) - 1)
        # Rounding at an edge may land on the excluded sequence; its neighbour is as likely.
        return chosen if chosen != excluded else (excluded + 1) % len(self._sequence_edges)

    def _nearby(self, frames: np.ndarray, template: int, rng: np.random.Generator) -> int:
        """A sampleable frame within ``frame_range`` of ``template`` (itself only if allowed
        or if it has no other)."""
        reach = self.settings.frame_range
        low = int(np.searchsorted(frames, template - reach, side="left"))
        high = int(np.searchsorted(frames, template + reach, side="right"))
        if self.settings.allow_same_frame:
            return int(frames[low + rng.integers(high - low)])
        others = high - low - 1
        if others == 0:
            return template
        position = low + int(rng.integers(others))
        if frames[position] >= template:
            position += 1
        return int(frames[position])


def _default_name(sequences: Sequence[TrainSequence], position: int) -> str:
    kinds = sorted({s.name.split(":", 1)[0] for s in sequences})
    return f"#{position + 1} ({', '.join(kinds) if kinds else 'no sequences'})"
