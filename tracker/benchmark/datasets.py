"""Offline readers for benchmark folders, shaped the way the got10k toolkit's experiments read them.

Each reader exposes what the toolkit's ``ExperimentOTB`` / ``ExperimentGOT10k`` use of a dataset:
``seq_names``, ``len()``, ``dataset[index_or_name] -> (img_files, anno)`` (plus ``meta`` while
``return_meta`` is true) and iteration. Unlike the toolkit's own classes they never download,
accept any subset of a benchmark's sequences, and say exactly what is wrong with a folder.

``box_origin`` is the coordinate of the top-left pixel's corner in the annotation files, so
``file_box - [box_origin, box_origin, 0, 0]`` is a box in the library's convention:

- OTB and LaSOT write 1-based pixel coordinates (``box_origin = 1``);
- GOT-10k writes 0-based ones (``box_origin = 0``): its toolkit clips boxes to ``[0, W] x [0, H]``
  when it evaluates, and boxes reaching ``y + h = H`` are the image's bottom edge.
"""

from __future__ import annotations

import fnmatch
import io
import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..clips import frames as video_frames
from ..image_files import IMAGE_EXTENSIONS, list_images

DATASETS = ("otb", "got10k", "lasot", "clips")

#: OTB sequences whose ``img/`` holds more frames than the benchmark evaluates (the OTB
#: toolkit's ``startFrame``/``endFrame``, as got10k's ``OTB`` applies them): first and last
#: frame, 1-based and inclusive.
OTB_FRAME_RANGES = {
    "david": (300, 770),
    "football1": (1, 74),
    "freeman3": (1, 460),
    "freeman4": (1, 283),
    "diving": (1, 215),
}

#: GOT-10k's ``cover.label`` value of a fully visible target (0 = fully occluded or absent).
GOT10K_FULLY_VISIBLE = 8

Sample = Union[Tuple[List[str], np.ndarray], Tuple[List[str], np.ndarray, Dict[str, object]]]


class SequenceFolder:
    """Sequences of one benchmark folder; subclasses fill ``_sequences`` (name -> folder)."""

    #: Folder name of the experiment under ``--results`` / ``--reports`` (the toolkit's names).
    experiment_name = ""
    box_origin = 1.0
    #: True where the annotation file holds only the first frame's box (GOT-10k ``test``).
    first_box_only = False

    def __init__(self, root: Union[str, Path]) -> None:
        self.root = Path(root)
        if not self.root.exists():
            raise FileNotFoundError(f"--root {self.root} does not exist")
        if not self.root.is_dir():
            raise ValueError(f"--root {self.root} is not a folder")
        self.return_meta = False
        self._sequences: Dict[str, Tuple[Path, Path]] = {}

    @property
    def seq_names(self) -> List[str]:
        return list(self._sequences)

    def __len__(self) -> int:
        return len(self._sequences)

    def __iter__(self) -> Iterator[Sample]:
        for name in self.seq_names:
            yield self[name]

    def __getitem__(self, index: Union[int, str]) -> Sample:
        name = self.seq_names[index] if isinstance(index, int) else index
        if name not in self._sequences:
            raise KeyError(f"no sequence {name!r} in {self.root}")
        img_files = self.image_files(name)
        anno = self.annotations(name)
        if not img_files:
            raise ValueError(f"sequence {name} has no images ({', '.join(IMAGE_EXTENSIONS)})")
        expected = 1 if self.first_box_only else len(img_files)
        if len(anno) != expected:
            raise ValueError(
                f"{self._sequences[name][1]} has {len(anno)} boxes for {len(img_files)} frames"
            )
        if not present_frames(anno[:1])[0]:
            raise ValueError(
                f"sequence {name}: the first frame's ground truth {_row_text(anno[0])} marks no "
                f"target (NaN or 0,0,0,0) in {self._sequences[name][1]}; tracking starts from "
                "that box"
            )
        if self.return_meta:
            return img_files, anno, self.meta(name)
        return img_files, anno

    def image_files(self, name: str) -> List[str]:
        """The frames of sequence ``name`` in order, as paths."""
        return [str(path) for path in list_images(self._sequences[name][0])]

    def annotations(self, name: str) -> np.ndarray:
        """The N x 4 ``(x, y, w, h)`` ground truth of ``name``, numbers as in its file."""
        return read_boxes(self._sequences[name][1])

    def meta(self, name: str) -> Dict[str, object]:
        return {}

    def hidden_frames(self, name: str) -> int:
        """Frames whose target the dataset's own labels mark invisible while the ground truth
        still holds a box (LaSOT's full occlusion or out of view); evaluated all the same."""
        return 0

    def select(self, patterns: Optional[Sequence[str]]) -> None:
        """Keep only the sequences matching ``patterns`` (names or shell patterns, e.g. ``Car*``)."""
        if not patterns:
            return
        kept = []
        for pattern in patterns:
            matches = [name for name in self._sequences if fnmatch.fnmatchcase(name, pattern)]
            if not matches:
                raise ValueError(
                    f"--sequences {pattern!r} matches no sequence in {self.root}; "
                    f"known: {', '.join(self._sequences)}"
                )
            kept.extend(name for name in matches if name not in kept)
        self._sequences = {name: self._sequences[name] for name in sorted(kept)}

    def _require_sequences(self, pattern: str) -> None:
        if not self._sequences:
            raise ValueError(
                f"--root {self.root} holds no sequence in the {self.experiment_name} layout ({pattern})"
            )


class OTBFolder(SequenceFolder):
    """Any subset of OTB-layout sequences: ``<root>/<Name>/img/*.jpg`` + ``groundtruth_rect.txt``.

    Sequences with several targets (``groundtruth_rect.1.txt``, ``.2.txt``) become ``Name.1``,
    ``Name.2`` as in got10k's ``OTB``; empty annotation files are skipped as there.
    """

    experiment_name = "OTB"
    box_origin = 1.0

    def __init__(self, root: Union[str, Path]) -> None:
        super().__init__(root)
        found = []
        for folder in sorted(p for p in self.root.iterdir() if (p / "img").is_dir()):
            files = sorted(
                p for p in folder.iterdir()
                if re.fullmatch(r"groundtruth_rect(\.\d+)?\.txt", p.name) and p.read_text().strip()
            )
            for number, anno_file in enumerate(files, start=1):
                name = folder.name if len(files) == 1 else f"{folder.name}.{number}"
                found.append((name, folder / "img", anno_file))
        self._sequences = {name: (img, anno) for name, img, anno in sorted(found)}
        self._require_sequences("<Name>/img/*.jpg + <Name>/groundtruth_rect.txt")

    def image_files(self, name: str) -> List[str]:
        files = super().image_files(name)
        frame_range = OTB_FRAME_RANGES.get(name.split(".")[0].lower())
        if frame_range is not None:
            first, last = frame_range
            files = files[first - 1:last]
        return files


class LaSOTFolder(SequenceFolder):
    """LaSOT layout: ``<root>/<class>/<class>-<n>/img/*.jpg`` + ``groundtruth.txt``.

    A folder of sequences without the class level (``<root>/<class>-<n>/...``) works too.
    """

    experiment_name = "LaSOT"
    box_origin = 1.0

    def __init__(self, root: Union[str, Path]) -> None:
        super().__init__(root)
        anno_files = sorted(self.root.glob("*/groundtruth.txt")) + sorted(
            self.root.glob("*/*/groundtruth.txt")
        )
        self._sequences = {
            f.parent.name: (f.parent / "img", f)
            for f in sorted(anno_files, key=lambda f: f.parent.name)
            if (f.parent / "img").is_dir()
        }
        self._require_sequences("<class>/<class>-<n>/img/*.jpg + groundtruth.txt")

    #: LaSOT's per-frame visibility labels (one comma-separated 0/1 line each, beside the
    #: ground truth), as got10k's ``LaSOT`` reads them into a sequence's meta.
    VISIBILITY_LABELS = ("full_occlusion", "out_of_view")

    def meta(self, name: str) -> Dict[str, object]:
        folder = self._sequences[name][1].parent
        meta: Dict[str, object] = {}
        for label in self.VISIBILITY_LABELS:
            path = folder / f"{label}.txt"
            if path.is_file():
                values = np.loadtxt(io.StringIO(path.read_text().replace(",", " ")), ndmin=1)
                frames = len(self.annotations(name))
                if len(values) != frames:
                    raise ValueError(f"{path} has {len(values)} labels for {frames} frames")
                meta[label] = values
        return meta

    def hidden_frames(self, name: str) -> int:
        """Frames labelled full_occlusion or out_of_view. got10k evaluates LaSOT as OTB, every
        frame with a box, so they stay in the metrics; they are counted in the report."""
        labels = [np.asarray(v) > 0 for v in self.meta(name).values()]
        return int(np.logical_or.reduce(labels).sum()) if labels else 0


class ClipFolder(SequenceFolder):
    """Annotated videos: ``<root>/<name>.mp4`` (or ``.avi``, ``.mov``, ``.mkv``) with
    ``<name>.txt`` beside it, one 1-based ``x,y,w,h`` line per frame (LaSOT's numbers, as
    ``../shared/data/clips`` holds them); evaluated as OTB. Frames are decoded while tracking;
    a video shorter than its annotations is an error naming both counts.
    """

    experiment_name = "clips"
    box_origin = 1.0
    VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv")

    def __init__(self, root: Union[str, Path]) -> None:
        super().__init__(root)
        self._sequences = {
            video.stem: (video, video.with_suffix(".txt"))
            for video in sorted(self.root.iterdir())
            if video.suffix.lower() in self.VIDEO_EXTENSIONS and video.with_suffix(".txt").is_file()
        }
        self._require_sequences("<name>.mp4 + <name>.txt")

    def image_files(self, name: str) -> List[str]:
        """One ``<video>#<frame>`` entry per annotated frame (the frames are in the video)."""
        video = self._sequences[name][0]
        return [f"{video}#{index}" for index in range(len(self.annotations(name)))]

    def frames(self, name: str) -> Iterator[np.ndarray]:
        """The decoded BGR frames of ``name``, as many as it has annotations."""
        video, anno_file = self._sequences[name]
        expected = len(self.annotations(name))
        decoded = 0
        for decoded, frame in enumerate(video_frames(video, "--root"), start=1):
            yield frame
            if decoded == expected:
                return
        raise ValueError(f"{video} has {decoded} frames but {anno_file} annotates {expected}")


class GOT10kFolder(SequenceFolder):
    """GOT-10k layout: ``<root>/<subset>/<seq>/*.jpg`` + ``groundtruth.txt`` (+ ``list.txt``).

    ``test`` sequences carry only the first box. ``list.txt`` gives the sequences when present
    (listed sequences missing from the folder are left out and named in ``missing``); otherwise
    every sub-folder with a ``groundtruth.txt`` is one. For the ``val`` report, the toolkit reads
    ``meta_info.ini`` (image resolution) and ``cover.label`` (visible frames); without them the
    resolution is read from the first image and every frame whose ground truth holds a box
    counts as visible.
    """

    experiment_name = "GOT-10k"
    box_origin = 0.0
    SUBSETS = ("val", "test")

    def __init__(self, root: Union[str, Path], subset: str = "val") -> None:
        super().__init__(root)
        if subset not in self.SUBSETS:
            raise ValueError(f"--subset must be one of {', '.join(self.SUBSETS)}, got {subset!r}")
        self.subset = subset
        self.first_box_only = subset == "test"
        folder = self.root / subset
        if not folder.is_dir():
            raise FileNotFoundError(
                f"--root {self.root} has no {subset}/ folder (GOT-10k layout: "
                f"<root>/{subset}/<sequence>/*.jpg + groundtruth.txt)"
            )
        list_file = folder / "list.txt"
        if list_file.is_file():
            listed = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
        else:
            listed = sorted(p.parent.name for p in folder.glob("*/groundtruth.txt"))
        present = [name for name in listed if (folder / name / "groundtruth.txt").is_file()]
        self.missing = [name for name in listed if name not in present]
        self._sequences = {name: (folder / name, folder / name / "groundtruth.txt") for name in present}
        self._require_sequences(f"{subset}/<sequence>/*.jpg + groundtruth.txt")

    def meta(self, name: str) -> Dict[str, object]:
        """``resolution`` (``"(W, H)"`` as in ``meta_info.ini``) and ``cover`` (per frame, 0-8)."""
        folder = self._sequences[name][0]
        meta: Dict[str, object] = {}
        info_file = folder / "meta_info.ini"
        if info_file.is_file():
            for line in info_file.read_text().splitlines()[1:]:
                key, sep, value = line.partition(": ")
                if sep:
                    meta[key.strip()] = value.strip()
        if "resolution" not in meta:
            from PIL import Image

            with Image.open(self.image_files(name)[0]) as image:
                meta["resolution"] = str(image.size)
        cover_file = folder / "cover.label"
        if cover_file.is_file():
            meta["cover"] = np.loadtxt(cover_file, ndmin=1)
        elif self.first_box_only:
            meta["cover"] = np.full(len(self.image_files(name)), GOT10K_FULLY_VISIBLE, dtype=float)
        else:
            meta["cover"] = np.where(
                present_frames(self.annotations(name)), GOT10K_FULLY_VISIBLE, 0.0
            )
        return meta


def open_dataset(kind: str, root: Union[str, Path], subset: str = "val") -> SequenceFolder:
    """The reader for ``kind`` (one of :data:`DATASETS`) over folder ``root``."""
    if kind == "otb":
        return OTBFolder(root)
    if kind == "lasot":
        return LaSOTFolder(root)
    if kind == "got10k":
        return GOT10kFolder(root, subset)
    if kind == "clips":
        return ClipFolder(root)
    raise ValueError(f"--dataset must be one of {', '.join(DATASETS)}, got {kind!r}")


def read_boxes(path: Path) -> np.ndarray:
    """An annotation file's ``x, y, w, h`` rows (comma, tab or space separated) as N x 4 floats."""
    text = path.read_text().replace(",", " ")
    try:
        boxes = np.loadtxt(io.StringIO(text), ndmin=2)
    except ValueError as error:
        raise ValueError(f"{path} is not a table of x,y,w,h numbers: {error}") from None
    if boxes.shape[0] == 0 or boxes.shape[1] != 4:
        raise ValueError(f"{path} must hold one x,y,w,h line per frame, got shape {boxes.shape}")
    return boxes



def present_frames(anno: np.ndarray) -> np.ndarray:
    """Per row of ``anno``, whether it holds a box: False for rows with a NaN or four zeros.

    Such rows mean "no target in this frame" (LaSOT, OTB-style exports); the metrics leave those
    frames out, as the got10k toolkit leaves out GOT-10k's absent frames (``cover == 0``).
    """
    anno = np.asarray(anno, dtype=float)
    return ~np.isnan(anno).any(axis=1) & (anno != 0).any(axis=1)


def _row_text(row: np.ndarray) -> str:
    return ",".join(f"{value:g}" for value in row)
