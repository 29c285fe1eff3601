"""Training datasets on disk: ``--data KIND:PATH`` values and the sequences they hold.

Every reader converts its boxes to the library's convention (0-based pixel corners) and marks
the frames the pair sampler must never draw (absent, occluded, out of view, NaN or empty box).
A sequence whose annotations do not match its frames is left out with one line in
:attr:`DatasetLoad.skipped`; a dataset with nothing left is a ``ValueError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Tuple, Union

import cv2
import numpy as np

from ...benchmark.datasets import LaSOTFolder, OTBFolder, read_boxes
from ...clips import frames as video_frames
from ...image_files import list_images
from .sequence import FrameSource, ImageFiles, TrainSequence

#: The dataset layouts ``--data`` accepts.
KINDS = ("got10k", "lasot", "otb", "video")

#: GOT-10k's ground truth is 1-based: the toolkit's maintainer, answering got-10k/toolkit#6,
#: "All coordinate values are 1-based" (``<bb_left>, <bb_top>, <bb_width>, <bb_height>``).
GOT10K_BOX_ORIGIN = 1.0
#: The annotation files' origin of the shared video clips (LaSOT's 1-based convention).
VIDEO_BOX_ORIGIN = 1.0
#: Quality of the JPEG frames a video is decoded into.
JPEG_QUALITY = 95

#: Which per-frame label values mark the target visible, by label file (a missing file marks
#: nothing hidden; the box alone then decides).
_Rule = Callable[[np.ndarray], np.ndarray]
LASOT_VISIBLE: Dict[str, _Rule] = {
    "full_occlusion.txt": lambda flags: flags == 0,
    "out_of_view.txt": lambda flags: flags == 0,
}
GOT10K_VISIBLE: Dict[str, _Rule] = {
    "absence.label": lambda flags: flags == 0,
    "cover.label": lambda flags: flags > 0,
}

_FORMAT = "KIND:PATH or KIND@WEIGHT:PATH"

#: A reader's output: a sequence, or the line saying why one was left out.
_Found = Union[TrainSequence, str]


@dataclass(frozen=True)
class DataSpec:
    """One ``--data`` value: a dataset layout, its path and its share of the sampled pairs."""

    kind: str
    path: str
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"data spec {self}: unknown KIND {self.kind!r}; expected one of "
                f"{', '.join(KINDS)} ({_FORMAT})"
            )
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or not (
            math.isfinite(self.weight) and self.weight > 0
        ):
            raise ValueError(
                f"data spec {self}: WEIGHT must be a positive number, got {self.weight!r} "
                f"({_FORMAT}; KIND one of {', '.join(KINDS)})"
            )

    def __str__(self) -> str:
        if self.weight == 1:
            return f"{self.kind}:{self.path}"
        weight = f"{self.weight:g}" if isinstance(self.weight, (int, float)) else repr(self.weight)
        return f"{self.kind}@{weight}:{self.path}"


@dataclass(frozen=True)
class DatasetLoad:
    """What one :class:`DataSpec` yielded: its usable sequences and one line per skipped one."""

    spec: DataSpec
    sequences: Tuple[TrainSequence, ...]
    skipped: Tuple[str, ...]


def parse_data_spec(text: str) -> DataSpec:
    """``KIND:PATH`` or ``KIND@WEIGHT:PATH`` (``got10k:/data/GOT-10k/train``,
    ``video@2:clips/airplane-1.mp4``) as a :class:`DataSpec` whose path exists."""
    head, sep, path = str(text).partition(":")
    if not sep or not path:
        raise ValueError(
            f"data spec {text!r} must be {_FORMAT} with KIND one of {', '.join(KINDS)}"
        )
    kind, at, weight_text = head.partition("@")
    weight = 1.0
    if at:
        try:
            weight = float(weight_text)
        except ValueError:
            raise ValueError(
                f"data spec {text!r}: WEIGHT {weight_text!r} is not a number ({_FORMAT}; "
                f"KIND one of {', '.join(KINDS)})"
            ) from None
    spec = DataSpec(kind.strip().lower(), path, weight)
    _require_path(spec)
    return spec


def load_sequences(spec: DataSpec, cache_dir: Path) -> DatasetLoad:
    """The sequences of ``spec``; videos are decoded once into ``cache_dir`` and reused."""
    root = _require_path(spec)
    found = list(_READERS[spec.kind](root, Path(cache_dir)))
    sequences = tuple(item for item in found if isinstance(item, TrainSequence))
    skipped = tuple(item for item in found if isinstance(item, str))
    if not sequences:
        why = (
            f"all {len(skipped)} sequence(s) were skipped, e.g. {skipped[0]}" if skipped
            else f"it holds no sequence in the {spec.kind} layout ({_LAYOUTS[spec.kind]})"
        )
        raise ValueError(f"--data {spec}: no training sequence left in {root}: {why}")
    return DatasetLoad(spec, sequences, skipped)


def _require_path(spec: DataSpec) -> Path:
    root = Path(spec.path)
    if not root.exists():
        raise FileNotFoundError(f"--data {spec}: {root} does not exist")
    if (spec.kind == "video") == root.is_dir():
        expected = "a video file" if spec.kind == "video" else "a folder"
        raise ValueError(f"--data {spec}: {root} must be {expected} ({_LAYOUTS[spec.kind]})")
    return root


def _sequence(name: str, frames: FrameSource, boxes: np.ndarray, visible: np.ndarray,
              where: Path) -> _Found:
    """A sequence, or the line skipping it when its frames and annotation lines disagree."""
    if len(frames) != len(boxes):
        return _mismatch(name, len(frames), len(boxes), where)
    return TrainSequence(name, frames, boxes, visible)


def _mismatch(name: str, frames: int, lines: int, where: Path) -> str:
    return f"{name}: {frames} frames but {lines} annotation lines in {where}; skipped"


def _visibility(folder: Path, count: int, name: str,
                rules: Dict[str, _Rule]) -> Union[np.ndarray, str]:
    """Per frame, whether every label file of ``rules`` present in ``folder`` marks it visible;
    the skip line instead when one cannot be read or does not hold ``count`` labels."""
    visible = np.ones(count, bool)
    for file_name, is_visible in rules.items():
        flags, problem = _flags(folder / file_name, count, name)
        if problem:
            return problem
        if flags is not None:
            visible &= is_visible(flags)
    return visible


def _flags(path: Path, count: int, name: str) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """Per-frame integer labels of ``path`` (comma, space or newline separated); ``None`` flags
    when the file is absent, an error line when it cannot be read or does not hold ``count``."""
    if not path.is_file():
        return None, None
    try:
        values = np.array([int(float(v)) for v in path.read_text().replace(",", " ").split()])
    except ValueError as error:
        return None, f"{name}: {path} is not a list of integers ({error}); skipped"
    if len(values) != count:
        return None, f"{name}: {count} frames but {len(values)} labels in {path}; skipped"
    return values, None


def _otb(root: Path, cache_dir: Path) -> Iterator[_Found]:
    try:
        folder = OTBFolder(root)
    except ValueError:
        return
    for name in folder.seq_names:
        try:
            boxes = folder.annotations(name)
        except ValueError as error:
            yield f"otb:{name}: {error}; skipped"
            continue
        files = folder.image_files(name)
        yield _sequence(f"otb:{name}", ImageFiles(files), _zero_based(boxes, folder.box_origin),
                        np.ones(len(boxes), bool), Path(files[0]).parent if files else root)


def _lasot(root: Path, cache_dir: Path) -> Iterator[_Found]:
    try:
        folder = LaSOTFolder(root)
    except ValueError:
        return
    for name in folder.seq_names:
        label = f"lasot:{name}"
        files = folder.image_files(name)
        if not files:
            yield f"{label}: no images in its img/ folder; skipped"
            continue
        sequence_dir = Path(files[0]).parent.parent
        anno_file = sequence_dir / "groundtruth.txt"
        try:
            boxes = folder.annotations(name)
        except ValueError as error:
            yield f"{label}: {error}; skipped"
            continue
        visible = _visibility(sequence_dir, len(files), label, LASOT_VISIBLE)
        yield visible if isinstance(visible, str) else _sequence(
            label, ImageFiles(files), _zero_based(boxes, folder.box_origin), visible, anno_file
        )


def _got10k(root: Path, cache_dir: Path) -> Iterator[_Found]:
    """GOT-10k ``train`` / ``val`` through the toolkit's ``GOT10k`` class (offline: it reads
    ``list.txt`` and never downloads), so ``root`` holds ``train/list.txt`` or is a split folder
    named ``train`` or ``val`` (the class takes nothing else). Its ``return_meta`` is not used:
    it requires ``meta_info.ini``, which training does not need and converted datasets often
    lack, so ``absence.label`` / ``cover.label`` are read here (either may be absent).

    Boxes: ``groundtruth.txt`` is ``x, y, w, h`` with 1-based coordinates (the toolkit's
    maintainer in got-10k/toolkit#6); 1 is subtracted from x and y."""
    from got10k.datasets import GOT10k

    if (root / "list.txt").is_file() and root.name in ("train", "val"):
        base, subset = root.parent, root.name
    elif (root / "train" / "list.txt").is_file():
        base, subset = root, "train"
    else:
        return
    with contextlib.redirect_stdout(io.StringIO()):  # its warnings for listed-but-missing folders
        dataset = GOT10k(str(base), subset=subset)
    for index, (name, seq_dir) in enumerate(zip(dataset.seq_names, dataset.seq_dirs)):
        label = f"got10k:{name}"
        anno_file = Path(seq_dir) / "groundtruth.txt"
        if not anno_file.is_file():
            yield f"{label}: listed in list.txt but {anno_file} does not exist; skipped"
            continue
        try:
            files, boxes = dataset[index]
        except AssertionError:  # the toolkit's frame-count check, without a message
            yield _got10k_mismatch(label, Path(seq_dir), anno_file)
            continue
        except ValueError as error:
            yield f"{label}: {anno_file} is not a table of x,y,w,h numbers ({error}); skipped"
            continue
        visible = _visibility(Path(seq_dir), len(files), label, GOT10K_VISIBLE)
        # A one-line groundtruth.txt loads as a flat row of 4 numbers.
        boxes = _zero_based(np.atleast_2d(boxes), GOT10K_BOX_ORIGIN)
        yield visible if isinstance(visible, str) else _sequence(
            label, ImageFiles(files), boxes, visible, anno_file
        )


def _got10k_mismatch(label: str, seq_dir: Path, anno_file: Path) -> str:
    """The skip line of a sequence the toolkit refused for its frame count."""
    frames = len(list(seq_dir.glob("*.jpg")))
    try:
        lines = len(read_boxes(anno_file))
    except ValueError as error:
        return f"{label}: {error}; skipped"
    if frames == lines:  # one frame and one line: the toolkit reads that line as 4 boxes
        return f"{label}: a single frame, which the got10k toolkit cannot read; skipped"
    return _mismatch(label, frames, lines, anno_file)


def _video(path: Path, cache_dir: Path) -> Iterator[_Found]:
    anno_file = path.with_suffix(".txt")
    if not anno_file.is_file():
        raise FileNotFoundError(
            f"--data video:{path}: expected its boxes in {anno_file} (one 1-based x,y,w,h line "
            "per frame, beside the video)"
        )
    boxes = read_boxes(anno_file)
    frames = ImageFiles(list_images(decoded_video(path, cache_dir)))
    name = f"video:{path.stem}"
    if len(frames) != len(boxes):
        why = "missing or undecodable" if len(frames) < len(boxes) else "unannotated"
        yield (f"{name}: {len(frames)} frames decoded but {len(boxes)} annotation lines in "
               f"{anno_file} ({abs(len(boxes) - len(frames))} frame(s) {why}); skipped")
        return
    yield _sequence(name, frames, _zero_based(boxes, VIDEO_BOX_ORIGIN), np.ones(len(boxes), bool),
                    anno_file)


def decoded_video(path: Path, cache_dir: Path) -> Path:
    """The folder of ``path``'s frames as JPEGs (``00000001.jpg``...), decoding only the first
    time: the folder is keyed by the resolved path, size and modification time, and written
    under a temporary name then renamed, so an interrupted decode never passes for a whole one."""
    path = Path(path).resolve()
    stat = path.stat()
    key = hashlib.sha1(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    cache_dir = Path(cache_dir)
    target = cache_dir / f"{path.stem}-{key}"
    if target.is_dir():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=cache_dir))
    try:
        for number, frame in enumerate(video_frames(path, f"--data video:{path}"), start=1):
            file = partial / f"{number:08d}.jpg"
            if not cv2.imwrite(str(file), frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
                raise OSError(f"cannot write the decoded frame {file}")
        try:
            os.rename(partial, target)
        except OSError:
            if not target.is_dir():  # not another process finishing the same video first
                raise
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    return target


def _zero_based(boxes: np.ndarray, origin: float) -> np.ndarray:
    """``boxes`` as written with the top-left pixel's corner at ``origin``, in the library's
    0-based convention."""
    return np.asarray(boxes, dtype=np.float64) - [origin, origin, 0.0, 0.0]


_READERS: Dict[str, Callable[[Path, Path], Iterator[_Found]]] = {
    "got10k": _got10k, "lasot": _lasot, "otb": _otb, "video": _video,
}

_LAYOUTS = {
    "got10k": "<root>/train/list.txt, or a train/ or val/ folder holding list.txt, with "
              "<sequence>/00000001.jpg..., groundtruth.txt, absence.label, cover.label",
    "lasot": "<root>/<category>/<category>-<n>/img/00000001.jpg..., groundtruth.txt, "
             "full_occlusion.txt, out_of_view.txt",
    "otb": "<root>/<Name>/img/0001.jpg... + <Name>/groundtruth_rect.txt",
    "video": "a video file with a .txt of the same name beside it, one 1-based x,y,w,h line "
             "per frame",
}
