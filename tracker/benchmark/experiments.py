"""The got10k toolkit's experiments, run one sequence at a time on the offline readers.

The toolkit's classes do the work that decides the numbers: ``Tracker.track`` (the tracking
loop and its per-frame timer), ``_record`` (the result files and their layout), ``report`` (the
metrics, ``performance.json``) and ``plot_curves`` (the PNG plots). What is changed:

- ``__init__`` takes a reader from :mod:`.datasets` instead of building the toolkit's dataset
  classes, which insist on complete benchmarks and try to download them;
- sequences are run one by one (:meth:`run_sequence`), so a caller can filter, shard and spread
  them over processes; finished sequences (their result file exists) are skipped, as the toolkit's
  ``run`` does;
- result files appear atomically: the toolkit's ``_record`` writes into a staging folder whose
  files are then renamed into place, the box file last, so an interrupted run never leaves a
  truncated result that a later run would take for finished;
- OTB and LaSOT reports gain the normalised precision, which got10k 0.1.3 does not compute (see
  :func:`normalized_precision_curve`); GOT-10k ``val`` reports gain SR0.75, read off the toolkit's
  own success curve, and the OTB scores (success AUC, precision at 20 px, normalised precision)
  computed from the same boxes by the same code as the OTB report (:func:`one_pass_curves`);
- frames whose ground truth marks no target (a NaN or ``0,0,0,0``, see
  :func:`~.datasets.present_frames`) are left out of every metric, as the toolkit's GOT-10k report
  leaves out frames with ``cover == 0``; each report counts them as ``absent_frames``, per
  sequence and overall; LaSOT frames labelled ``full_occlusion`` or ``out_of_view`` that still
  hold a box are evaluated, as got10k evaluates LaSOT (as OTB, every frame), and counted as
  ``hidden_frames``;
- every run also records which frames the tracker flagged ``lost`` (``lost/<seq>_lost.txt``
  beside the boxes), and OTB-style reports say how good that flag is: ``lost_precision``, the
  share of flagged frames whose IoU with the ground truth is below :data:`FAILURE_IOU`, and
  ``lost_recall``, the share of frames below it that are flagged (frames after the first, target
  present; pooled over the sequences);
- annotated videos (:class:`~.datasets.ClipFolder`) are decoded and tracked frame by frame,
  timed as the toolkit's ``track`` times image files.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from got10k.experiments import ExperimentGOT10k, ExperimentOTB
from got10k.trackers import Tracker as ToolkitTrackerBase
from got10k.utils.metrics import rect_iou

from ..api import Tracker
from .datasets import GOT10kFolder, SequenceFolder, present_frames

#: Thresholds of the normalised precision curve: normalised centre error 0, 0.01, ..., 0.5.
NORM_PRECISION_THRESHOLDS = np.linspace(0.0, 0.5, 51)
#: The OTB report's curve resolutions: IoU thresholds 0, 0.05, ..., 1; centre errors 0, ..., 50 px.
OTB_IOU_BINS = 21
OTB_CENTRE_ERROR_BINS = 51
#: Index of the 20 px threshold on the precision curve (the OTB precision score).
PRECISION_AT_20PX = 20
#: IoU below which a frame counts as a tracking failure for the lost-flag scores.
FAILURE_IOU = 0.1


class ToolkitTracker(ToolkitTrackerBase):
    """A library :class:`~tracker.api.Tracker` behind the toolkit's tracker interface.

    The toolkit hands PIL RGB images and boxes as written in the annotation files; the library
    takes BGR arrays and boxes with (0, 0) at the top-left pixel's corner. ``box_origin`` is
    the annotation files' coordinate of that corner (1 for OTB and LaSOT, 0 for GOT-10k).
    ``frame_counter`` (a ``multiprocessing.Value``), when given, counts the frames tracked for a
    progress bar; the increment (about a microsecond) falls inside the toolkit's frame timer.
    """

    def __init__(
        self, name: str, tracker: Tracker, box_origin: float, frame_counter: Optional[object] = None
    ) -> None:
        super().__init__(name=name, is_deterministic=True)
        self._tracker = tracker
        self._offset = np.array([box_origin, box_origin, 0.0, 0.0])
        self._frame_counter = frame_counter
        #: per frame of the last sequence, whether the tracker flagged it lost (first: False)
        self.lost_flags: List[bool] = []

    def init(self, image, box) -> None:
        self._init_bgr(_bgr(image), box)

    def update(self, image) -> np.ndarray:
        return self._update_bgr(_bgr(image))

    def track_frames(self, frames: Iterable[np.ndarray], box) -> Tuple[np.ndarray, np.ndarray]:
        """The toolkit's ``track`` for decoded BGR frames (a video): the boxes and the seconds
        of each frame's ``init`` or ``update`` call."""
        boxes, times = [], []
        for index, frame in enumerate(frames):
            start = time.perf_counter()
            if index == 0:
                self._init_bgr(frame, box)
                boxes.append(np.asarray(box, dtype=float))
            else:
                boxes.append(self._update_bgr(frame))
            times.append(time.perf_counter() - start)
        return np.array(boxes), np.array(times)

    def _init_bgr(self, frame: np.ndarray, box) -> None:
        self._count()
        self._tracker.init(frame, np.asarray(box, dtype=float) - self._offset)
        self.lost_flags = [False]

    def _update_bgr(self, frame: np.ndarray) -> np.ndarray:
        self._count()
        result = self._tracker.update(frame)
        self.lost_flags.append(result.lost)
        return np.asarray(result.box) + self._offset

    def _count(self) -> None:
        if self._frame_counter is not None:
            with self._frame_counter.get_lock():
                self._frame_counter.value += 1


def _first_undecodable(img_files: Sequence[str]) -> str:
    """The first of ``img_files`` that PIL cannot decode (the last one if all decode)."""
    from PIL import Image

    for path in img_files:
        try:
            with Image.open(path) as image:
                image.load()
        except (OSError, SyntaxError):
            return path
    return img_files[-1]


def _bgr(image) -> np.ndarray:
    return np.asarray(image)[:, :, ::-1]


class _OfflineRuns:
    """Per-sequence running, result bookkeeping and atomic recording; mixed into the toolkit's
    experiment classes (it relies on their ``dataset``, ``result_dir`` and ``_record``)."""

    dataset: SequenceFolder
    result_dir: str
    report_dir: str

    def _use(self, dataset: SequenceFolder, result_dir: str, report_dir: str) -> None:
        """Set what the toolkit's ``__init__`` sets, without its dataset classes."""
        self.dataset = dataset
        self.result_dir = os.path.join(result_dir, dataset.experiment_name)
        self.report_dir = os.path.join(report_dir, dataset.experiment_name)

    def record_file(self, tracker_name: str, seq_name: str) -> str:
        raise NotImplementedError

    def time_file(self, tracker_name: str, seq_name: str) -> str:
        raise NotImplementedError

    def is_done(self, tracker_name: str, seq_name: str) -> bool:
        return os.path.exists(self.record_file(tracker_name, seq_name))

    def missing(self, tracker_names: Sequence[str]) -> Dict[str, List[str]]:
        """Per tracker, the dataset's sequences that have no result file yet."""
        return {
            name: [s for s in self.dataset.seq_names if not self.is_done(name, s)]
            for name in tracker_names
        }

    def run_sequence(self, tracker: ToolkitTracker, seq_name: str) -> bool:
        """Track ``seq_name`` and record it in the toolkit's layout; False if it was done already."""
        record_file = self.record_file(tracker.name, seq_name)
        if os.path.exists(record_file):
            return False
        img_files, anno = self.dataset[seq_name][:2]
        decoded = getattr(self.dataset, "frames", None)
        try:
            if decoded is not None:
                boxes, times = tracker.track_frames(decoded(seq_name), anno[0, :])
            else:
                boxes, times = tracker.track(img_files, anno[0, :], visualize=False)
        except (OSError, SyntaxError) as error:  # PIL's errors for an undecodable image
            raise ValueError(f"{seq_name}: cannot decode frame {_first_undecodable(img_files)}: "
                             f"{' '.join(str(error).split())}") from None
        lost_file = Path(self.lost_file(tracker.name, seq_name))
        lost_file.parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(lost_file, np.asarray(tracker.lost_flags, dtype=int), fmt="%d")
        self._record(record_file, boxes, times)
        return True

    def settings_file(self, tracker_name: str) -> str:
        """Where the settings a tracker's results were made with are kept: beside its results
        folder, not in it, so that GOT-10k's submission archive holds results only."""
        return os.path.join(self.result_dir, f"{tracker_name}.settings.json")

    def has_results(self, tracker_name: str) -> bool:
        """Whether any result of ``tracker_name`` is stored, for any sequence."""
        return os.path.isdir(os.path.join(self.result_dir, tracker_name))

    def recorded_settings(self, tracker_name: str) -> Optional[dict]:
        """The settings stored by :meth:`record_settings`, or None."""
        path = self.settings_file(tracker_name)
        if not os.path.isfile(path):
            return None
        try:
            with open(path) as f:
                return json.load(f)
        except ValueError:
            raise ValueError(f"{path} is not valid JSON; delete it together with the results "
                             f"folder {os.path.join(self.result_dir, tracker_name)}") from None

    def record_settings(self, tracker_name: str, settings: dict) -> None:
        """Store ``settings`` (plain JSON values) as what ``tracker_name``'s results are made with."""
        os.makedirs(self.result_dir, exist_ok=True)
        path = self.settings_file(tracker_name)
        staging = f"{path}.partial-{os.getpid()}"
        with open(staging, "w") as f:
            json.dump(settings, f, indent=2, sort_keys=True)
        os.replace(staging, path)

    def lost_file(self, tracker_name: str, seq_name: str) -> str:
        """Where a run writes its per-frame lost flags (0/1 lines), beside its boxes."""
        return os.path.join(os.path.dirname(self.record_file(tracker_name, seq_name)), "lost",
                            f"{seq_name}_lost.txt")

    def _record(self, record_file: str, boxes: np.ndarray, times: np.ndarray) -> None:
        os.makedirs(self.result_dir, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=self.result_dir))
        try:
            staged_record = staging / os.path.relpath(record_file, self.result_dir)
            with contextlib.redirect_stdout(io.StringIO()):
                super()._record(str(staged_record), boxes, times)
            staged = sorted(
                (p for p in staging.rglob("*") if p.is_file()), key=lambda p: p == staged_record
            )
            for path in staged:
                target = Path(self.result_dir) / path.relative_to(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def frames_and_seconds(self, tracker_name: str) -> Tuple[int, float]:
        """Frames tracked and seconds spent in ``init``/``update`` over the dataset's sequences."""
        frames, seconds = 0, 0.0
        for seq_name in self.dataset.seq_names:
            path = self.time_file(tracker_name, seq_name)
            if os.path.isfile(path):
                times = np.loadtxt(path, delimiter=",", ndmin=2)[:, 0]
                frames += len(times)
                seconds += float(times.sum())
        return frames, seconds

    def report_quietly(self, tracker_names: Sequence[str]) -> Optional[dict]:
        """The toolkit's ``report`` (performance.json and plots) without its console chatter."""
        missing = {name: seqs for name, seqs in self.missing(tracker_names).items() if seqs}
        if missing:
            lines = "; ".join(
                f"{name}: {len(seqs)} of {len(self.dataset)} ({', '.join(seqs[:5])}"
                f"{', ...' if len(seqs) > 5 else ''})"
                for name, seqs in missing.items()
            )
            raise FileNotFoundError(
                f"no results under {self.result_dir} for {lines}; run the missing sequences "
                "(or the remaining shards) first"
            )
        import matplotlib.pyplot as plt

        try:
            with contextlib.redirect_stdout(io.StringIO()):
                return self.report(list(tracker_names))
        finally:
            plt.close("all")

    def report_file(self, tracker_names: Sequence[str]) -> str:
        """Where the toolkit writes ``performance.json`` (under the first tracker's name)."""
        return os.path.join(self.report_dir, tracker_names[0], "performance.json")

    def _rewrite_report(self, tracker_names: Sequence[str], performance: dict) -> None:
        with open(self.report_file(tracker_names), "w") as f:
            json.dump(performance, f, indent=4)


class OTBExperiment(_OfflineRuns, ExperimentOTB):
    """got10k's ``ExperimentOTB`` on an :class:`~.datasets.OTBFolder` or ``LaSOTFolder``.

    Results: ``<results>/<OTB|LaSOT>/<tracker>/<seq>.txt`` and ``.../times/<seq>_time.txt``;
    report: ``<reports>/<OTB|LaSOT>/<first tracker>/performance.json``, ``success_plots.png``,
    ``precision_plots.png``. LaSOT is evaluated as OTB (one-pass evaluation over every frame).
    """

    def __init__(self, dataset: SequenceFolder, result_dir: str, report_dir: str) -> None:
        # ExperimentOTB.__init__ would build got10k's OTB (all 100 sequences, downloading the
        # missing ones); same attributes, same curve resolutions.
        self._use(dataset, result_dir, report_dir)
        self.nbins_iou = OTB_IOU_BINS
        self.nbins_ce = OTB_CENTRE_ERROR_BINS

    def record_file(self, tracker_name: str, seq_name: str) -> str:
        return os.path.join(self.result_dir, tracker_name, f"{seq_name}.txt")

    def time_file(self, tracker_name: str, seq_name: str) -> str:
        return os.path.join(self.result_dir, tracker_name, "times", f"{seq_name}_time.txt")

    def _calc_metrics(self, boxes: np.ndarray, anno: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The toolkit's per-frame IoUs and centre errors (its hook for subclasses), over the
        frames whose ground truth holds a box only."""
        present = present_frames(anno)
        return super()._calc_metrics(boxes[present], anno[present])

    def report(self, tracker_names: List[str]) -> dict:
        """The toolkit's report, plus ``normalized_precision_curve`` / ``_score`` and
        ``absent_frames`` per tracker, overall and per sequence, written into the same
        ``performance.json``."""
        performance = super().report(tracker_names)
        for name in tracker_names:
            curves, absent, hidden, flag_counts = [], 0, 0, np.zeros(3, dtype=int)
            for seq_name, (_, anno) in zip(self.dataset.seq_names, self.dataset):
                boxes = np.loadtxt(self.record_file(name, seq_name), delimiter=",", ndmin=2)
                boxes[0] = anno[0]  # as the toolkit's report: the first frame is the given box
                curve = normalized_precision_curve(boxes, anno)
                curves.append(curve)
                seq_absent = absent_frames(anno)
                absent += seq_absent
                counts = self._lost_flag_counts(name, seq_name, boxes, anno)
                flag_counts += counts
                seq_hidden = self.dataset.hidden_frames(seq_name)
                hidden += seq_hidden
                performance[name]["seq_wise"][seq_name].update(
                    normalized_precision_curve=curve.tolist(),
                    normalized_precision_score=float(np.mean(curve)),
                    absent_frames=seq_absent,
                    hidden_frames=seq_hidden,
                    **lost_flag_scores(counts),
                )
            overall = np.mean(curves, axis=0)
            performance[name]["overall"].update(
                normalized_precision_curve=overall.tolist(),
                normalized_precision_score=float(np.mean(overall)),
                absent_frames=absent,
                hidden_frames=hidden,
                **lost_flag_scores(flag_counts),
            )
        self._rewrite_report(tracker_names, performance)
        return performance


    def _lost_flag_counts(
        self, name: str, seq_name: str, boxes: np.ndarray, anno: np.ndarray
    ) -> np.ndarray:
        """(flagged, failed, flagged and failed) frames of one sequence, over the frames after
        the first with a target; zeros when the run recorded no flags (older results)."""
        path = self.lost_file(name, seq_name)
        if not os.path.isfile(path):
            return np.zeros(3, dtype=int)
        flags = np.loadtxt(path, dtype=int, ndmin=1).astype(bool)
        counted = present_frames(anno)
        counted[0] = False
        if len(flags) != len(anno):
            raise ValueError(f"{path} has {len(flags)} flags for {len(anno)} frames")
        flagged = flags[counted]
        failed = rect_iou(boxes[counted], anno[counted]) < FAILURE_IOU
        return np.array([flagged.sum(), failed.sum(), (flagged & failed).sum()])


def lost_flag_scores(counts: np.ndarray) -> Dict[str, Optional[float]]:
    """``lost_precision`` and ``lost_recall`` from (flagged, failed, both) frame counts; None
    where the share has no frames to count."""
    flagged, failed, both = (int(c) for c in counts)
    return {
        "lost_precision": both / flagged if flagged else None,
        "lost_recall": both / failed if failed else None,
    }


class GOT10kExperiment(_OfflineRuns, ExperimentGOT10k):
    """got10k's ``ExperimentGOT10k`` on a :class:`~.datasets.GOT10kFolder` (``val`` or ``test``).

    Results: ``<results>/GOT-10k/<tracker>/<seq>/<seq>_001.txt`` and ``<seq>_time.txt``. The
    library's trackers are deterministic, so the toolkit runs one repetition. ``val`` report:
    ``<reports>/GOT-10k/<first tracker>/performance.json`` and ``success_plot.png``; ``test``
    has no ground truth: the toolkit zips the results for the evaluation server instead
    (``<results>/GOT-10k/<tracker>.zip``).
    """

    def __init__(self, dataset: GOT10kFolder, result_dir: str, report_dir: str) -> None:
        # ExperimentGOT10k.__init__ would read the folder with got10k's GOT10k.
        self._use(dataset, result_dir, report_dir)
        self.subset = dataset.subset
        self.nbins_iou = 101
        self.repetitions = 3

    def record_file(self, tracker_name: str, seq_name: str) -> str:
        return os.path.join(self.result_dir, tracker_name, seq_name, f"{seq_name}_001.txt")

    def time_file(self, tracker_name: str, seq_name: str) -> str:
        return os.path.join(self.result_dir, tracker_name, seq_name, f"{seq_name}_time.txt")

    def report(self, tracker_names: List[str]) -> Optional[dict]:
        """The toolkit's report; ``val`` gains ``sr75`` (the toolkit's success curve at IoU 0.75)
        and the OTB scores per tracker, overall and per sequence (:meth:`_add_one_pass_scores`)."""
        performance = super().report(tracker_names)
        if performance is None:
            return None
        thresholds = np.linspace(0, 1, self.nbins_iou)
        index = int(np.flatnonzero(np.isclose(thresholds, 0.75))[0])
        for name in tracker_names:
            overall = performance[name]["overall"]
            overall["sr75"] = overall["succ_curve"][index]
            self._add_one_pass_scores(name, performance[name])
        self._rewrite_report(tracker_names, performance)
        return performance

    def _add_one_pass_scores(self, tracker_name: str, performance: dict) -> None:
        """Success AUC, precision@20px and normalised precision, as the OTB report computes them
        (per-sequence curves of :func:`one_pass_curves`, averaged over sequences), on the frames
        the toolkit's AO counts: every frame after the first whose target is visible
        (``cover.label`` > 0) and whose ground truth holds a box. Unlike AO, boxes are not
        clipped to the image (OTB's IoU). ``absent_frames`` counts the ground truth's empty rows."""
        curves, absent = [], 0
        for seq_name in self.dataset.seq_names:
            anno = self.dataset.annotations(seq_name)
            counted = (np.arange(len(anno)) > 0) & (self.dataset.meta(seq_name)["cover"] > 0)
            boxes = np.loadtxt(self.record_file(tracker_name, seq_name), delimiter=",", ndmin=2)
            seq_curves = one_pass_curves(boxes[counted], anno[counted])
            curves.append(seq_curves)
            seq_absent = absent_frames(anno)
            absent += seq_absent
            performance["seq_wise"][seq_name].update(
                _one_pass_scores(*seq_curves), absent_frames=seq_absent
            )
        overall = [np.mean([c[k] for c in curves], axis=0) for k in range(3)]
        performance["overall"].update(_one_pass_scores(*overall), absent_frames=absent)

    def submission_archive(self, tracker_name: str) -> str:
        """The zip the toolkit's ``test`` report writes for the evaluation server."""
        return os.path.join(self.result_dir, f"{tracker_name}.zip")


def make_experiment(dataset: SequenceFolder, result_dir: str, report_dir: str) -> _OfflineRuns:
    """The toolkit experiment that evaluates ``dataset``."""
    if isinstance(dataset, GOT10kFolder):
        return GOT10kExperiment(dataset, result_dir, report_dir)
    return OTBExperiment(dataset, result_dir, report_dir)


def one_pass_curves(boxes: np.ndarray, anno: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Success, precision and normalised precision curves of one sequence's ``boxes``.

    Success and precision come from the toolkit's OTB metric code (``_calc_metrics`` and
    ``_calc_curves``, at the OTB report's resolutions), the normalised precision from
    :func:`normalized_precision_curve`; frames without a target are left out of all three.
    """
    metrics = OTBExperiment.__new__(OTBExperiment)  # its __init__ needs a dataset
    metrics.nbins_iou, metrics.nbins_ce = OTB_IOU_BINS, OTB_CENTRE_ERROR_BINS
    success, precision = metrics._calc_curves(*metrics._calc_metrics(boxes, anno))
    return success, precision, normalized_precision_curve(boxes, anno)


def _one_pass_scores(success: np.ndarray, precision: np.ndarray, norm_precision: np.ndarray) -> dict:
    """The curves and scores under the OTB report's keys."""
    return {
        "success_curve": success.tolist(),
        "precision_curve": precision.tolist(),
        "success_score": float(np.mean(success)),
        "precision_score": float(precision[PRECISION_AT_20PX]),
        "normalized_precision_curve": norm_precision.tolist(),
        "normalized_precision_score": float(np.mean(norm_precision)),
    }


def normalized_precision_curve(boxes: np.ndarray, anno: np.ndarray) -> np.ndarray:
    """Fraction of frames whose normalised centre error is ``<=`` each of
    :data:`NORM_PRECISION_THRESHOLDS`.

    The LaSOT protocol (Fan et al., CVPR 2019), as later got10k toolkit releases compute it:
    the centre offset's x and y are divided by the ground truth's width and height (at least 1
    pixel each), and the score is the curve's mean over thresholds 0 to 0.5 (its area). Frames
    whose ground truth marks no target are left out.
    """
    present = present_frames(anno)
    boxes, anno = boxes[present], anno[present]
    offset = (boxes[:, :2] + boxes[:, 2:] / 2) - (anno[:, :2] + anno[:, 2:] / 2)
    errors = np.hypot(*(offset / np.maximum(anno[:, 2:], 1.0)).T)
    return np.mean(errors[:, None] <= NORM_PRECISION_THRESHOLDS[None, :], axis=0)


def absent_frames(anno: np.ndarray) -> int:
    """How many frames of ``anno`` mark no target (left out of the metrics)."""
    return int(np.count_nonzero(~present_frames(anno)))
