"""accuracy and merge: benchmark accuracy through the got10k toolkit, offline.

accuracy tracks every sequence of an OTB-, LaSOT- or GOT-10k-layout folder with each --model,
writes the results in the toolkit's layout under --results, has the toolkit compute the report
under --reports (performance.json, success and precision plots as PNG) and prints one row per
model. Finished sequences are skipped, so an interrupted run resumes where it stopped. The
settings each tracker's results are made with (its tracking config, backend, weights, box
protocol) are stored beside them; results made with other settings (e.g. before a model's
defaults changed) are refused, naming the differences, rather than reported as today's.
--workers N spreads the sequences over N processes, each building its own tracker and using one
backend thread and one OpenCV thread unless --threads says otherwise. --shard I/N tracks only every N-th sequence of
the sorted list, starting with the I-th, and writes no report: merge builds it once every
shard is done (all shards writing to the same --results folder, or their folders copied into one).

Columns: success AUC (mean over the 21 IoU thresholds 0, 0.05, ..., 1 of the fraction of frames
with IoU > threshold), precision@20px (fraction of frames whose centre error is <= 20 px),
norm. precision (LaSOT protocol, which got10k 0.1.3 lacks: area under the curve of the centre
error divided by the ground truth's size, thresholds 0 to 0.5); for GOT-10k val AO, SR0.5,
SR0.75 first, then those three computed from the same boxes as the OTB report computes them
(per-sequence curves averaged over sequences) on the frames AO counts (after the first, target
visible); GOT-10k test (first box only) prints no accuracy and writes the submission archive.
fps is the toolkit's speed: the mean over frames of 1 / (time of that frame's init or update
call), per sequence, then averaged over sequences (OTB, LaSOT) or pooled (GOT-10k); frames/s is
all frames over all the time spent in init and update. Image decoding is not timed.

Every run records the frames the tracker flagged lost; OTB-style tables score that flag:
"lost: IoU<0.1" is the share of flagged frames whose IoU with the ground truth is below 0.1,
"IoU<0.1: lost" the share of those failures that were flagged (frames after the first, pooled).
--short-term tracks with long_term=False, --uncorrected with center_bias=(0, 0) (both: the
references' loop), for comparison.

A ground-truth row with a NaN or four zeros marks a frame without a target: it is left out of
every metric (as the toolkit leaves out GOT-10k's absent frames) and counted, per sequence, in
a line under the table and as absent_frames in performance.json. The first frame needs a box.
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm

from .. import api
from ..cli_args import (
    backend_options, ensure_writable_dir, positive_int, quote_command, set_thread_pools,
)
from ..zoo import get_config, list_models
from . import markdown
from .datasets import DATASETS, GOT10kFolder, open_dataset
from .experiments import GOT10kExperiment, ToolkitTracker, make_experiment

_EXAMPLES = """examples:
  python -m tracker.benchmark accuracy --dataset otb --root ../shared/data/otb --model nanotrack-v2
  python -m tracker.benchmark accuracy --dataset got10k --root data/GOT-10k --subset val \\
      --model nanotrack-v2 --model nanotrack-v3 --workers 2
  python -m tracker.benchmark accuracy ... --shard 3/8    # on each of 8 machines, then:
  python -m tracker.benchmark merge --dataset otb --root ../shared/data/otb --model nanotrack-v2
"""


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``accuracy`` and ``merge`` subcommands."""
    run = commands.add_parser(
        "accuracy",
        help="track a benchmark folder and report accuracy through the got10k toolkit",
        description=__doc__,
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common_arguments(run)
    run.add_argument("--workers", type=positive_int, default=1,
                     help="processes tracking sequences in parallel (default 1)")
    run.add_argument("--threads", type=positive_int, default=None,
                     help="threads per process: the backend's (torch or onnxruntime) and OpenCV's "
                          "(default: 1 with --workers > 1, else the libraries' defaults)")
    run.add_argument("--shard", type=_shard, default=None, metavar="I/N",
                     help="run only shard I of N (every N-th sequence of the sorted list, from "
                          "the I-th) and write no report; build it with `merge` afterwards")
    run.set_defaults(run=run_accuracy)

    merge = commands.add_parser(
        "merge",
        help="build the accuracy report from the results of all --shard runs",
        description="Build the report and table of `accuracy` from result files already written "
                    "(by all the shards of a sharded run); tracks nothing.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common_arguments(merge)
    merge.set_defaults(run=run_merge)


def _add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=DATASETS,
                        help="folder layout: otb (<Name>/img + groundtruth_rect.txt), lasot "
                             "(<class>/<class>-<n>/img + groundtruth.txt), got10k "
                             "(<subset>/<seq>/*.jpg + groundtruth.txt), clips (<name>.mp4 + "
                             "<name>.txt, 1-based boxes; evaluated as OTB)")
    parser.add_argument("--root", required=True, type=Path, help="the benchmark folder")
    parser.add_argument("--subset", default="val", choices=GOT10kFolder.SUBSETS,
                        help="GOT-10k subset (default val; test has no ground truth and gives "
                             "a submission archive)")
    parser.add_argument("--model", action="append", dest="models", required=True, metavar="NAME",
                        help=f"model to benchmark (repeatable): {', '.join(list_models())}")
    parser.add_argument("--backend", default="torch", choices=api.BACKENDS,
                        help="inference backend (default torch); results of another backend are "
                             "stored as <model>-<backend>")
    parser.add_argument("--weights", type=Path, default=None,
                        help="weights for the one --model: a checkpoint (torch) or an export "
                             "folder or sidecar (onnxruntime); results are stored as "
                             "<model>-<file name>. Default: found through the manifest")
    parser.add_argument("--raw-boxes", action="store_true",
                        help="hand the annotation files' numbers to the tracker unchanged and "
                             "record its boxes unchanged (the protocol behind most published "
                             "OTB/LaSOT numbers) instead of converting 1-based files to the "
                             "library's 0-based boxes; results are stored as <model>-raw")
    parser.add_argument("--short-term", action="store_true",
                        help="track with long_term=False (no held box, no re-detection: the "
                             "references' loop) where a model's record turns long-term tracking "
                             "on; results are stored as <model>-short-term")
    parser.add_argument("--uncorrected", action="store_true",
                        help="track with center_bias=(0, 0): boxes where the published network "
                             "puts them, without the record's centre correction (with "
                             "--short-term: the references' loop); stored as <model>-uncorrected")
    parser.add_argument("--sequences", action="append", metavar="NAMES",
                        help="only these sequences: comma-separated names or shell patterns "
                             "(repeatable), e.g. 'Girl,Car*'")
    parser.add_argument("--results", type=Path, default=Path("results"),
                        help="tracking results, in the toolkit's layout (default results/)")
    parser.add_argument("--reports", type=Path, default=Path("reports"),
                        help="performance.json and plots (default reports/)")
    parser.add_argument("--markdown", type=Path, default=None, metavar="FILE",
                        help="also write the table as Markdown, with the command that made it")


def _shard(text: str) -> Tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise argparse.ArgumentTypeError(f"expected I/N with 1 <= I <= N, e.g. 2/8; got {text!r}")
    return int(match.group(1)), int(match.group(2))


def tracker_name(
    model: str, backend: str, raw_boxes: bool = False, weights: Optional[Path] = None,
    short_term: bool = False, uncorrected: bool = False,
) -> str:
    """The name results are stored under: the model, suffixed by a non-default backend, by
    explicit weights, by the raw-box protocol, by the short-term loop and by the uncorrected
    centre bias."""
    name = model if backend == "torch" else f"{model}-{backend}"
    if weights is not None:
        name = f"{name}-{Path(weights).stem}"
    if raw_boxes:
        name = f"{name}-raw"
    if short_term:
        name = f"{name}-short-term"
    return f"{name}-uncorrected" if uncorrected else name


def evaluate(
    dataset: str, root: Path, models: Sequence[str], *, subset: str = "val",
    backend: str = "torch", weights: Optional[Path] = None, raw_boxes: bool = False,
    sequences: Optional[Sequence[str]] = None, results: Path = Path("results"),
    reports: Path = Path("reports"), workers: int = 1, threads: Optional[int] = None,
    progress: bool = True, short_term: bool = False, uncorrected: bool = False,
) -> "AccuracyReport":
    """Track every sequence of ``root`` not done yet with each model, then report.

    The library form of ``accuracy`` (the parameters are its options; ``sequences`` holds
    comma-separated names or patterns): results and the toolkit's report are written under
    ``results`` and ``reports``, and the numbers come back as an :class:`AccuracyReport`.
    ``progress`` prints the plan, notes and a progress bar to stderr. Ctrl-C stops the
    tracking (finished sequences are kept) and is raised again as KeyboardInterrupt.
    """
    experiment, names = _open(dataset, root, models, subset, backend, weights, raw_boxes,
                              sequences, results, reports, progress, short_term, uncorrected)
    settings = RunSettings(backend, _threads(threads, workers), raw_boxes, weights, short_term,
                           uncorrected)
    _track_missing(experiment, models, names, experiment.dataset.seq_names, settings, workers,
                   [(results, "--results"), (reports, "--reports")], progress)
    return _report(experiment, names)


def run_accuracy(args: argparse.Namespace) -> int:
    """``accuracy``: track what is not done yet, then report (unless sharded)."""
    if args.markdown is not None and args.shard is None:
        ensure_writable_dir(args.markdown.parent, "--markdown")
    options = _options(args)
    try:
        if args.shard is None:
            report = evaluate(args.dataset, args.root, args.models, **options,
                              workers=args.workers, threads=args.threads)
        else:
            _run_shard(args, options)
            return 0
    except KeyboardInterrupt:
        return 130
    _print(report, args)
    return 0


def _run_shard(args: argparse.Namespace, options: dict) -> None:
    """Track one ``--shard`` of the sequences; the report is left to ``merge``."""
    experiment, names = _open(args.dataset, args.root, args.models, **options, progress=True)
    index, count = args.shard
    seq_names = experiment.dataset.seq_names[index - 1::count]
    settings = _run_settings(args, _threads(args.threads, args.workers))
    _track_missing(experiment, args.models, names, seq_names, settings, args.workers,
                   [(args.results, "--results")], True)
    print(f"shard {index}/{count} done ({len(seq_names)} sequences); once "
          f"every shard is done, build the report with: python -m tracker.benchmark merge "
          f"{quote_command(_data_arguments(args))}", file=sys.stderr)


def run_merge(args: argparse.Namespace) -> int:
    """``merge``: the report of ``accuracy`` from existing result files."""
    experiment, names = _open(args.dataset, args.root, args.models, **_options(args),
                              progress=True)
    _check_settings(experiment, args.models, names, _run_settings(args, threads=None))
    _print(_report(experiment, names), args)
    return 0


def _run_settings(args: argparse.Namespace, threads: Optional[int]) -> "RunSettings":
    """The :class:`RunSettings` of ``accuracy``'s or ``merge``'s options."""
    return RunSettings(args.backend, threads, args.raw_boxes, args.weights, args.short_term,
                       args.uncorrected)


def _options(args: argparse.Namespace) -> dict:
    """The options ``accuracy`` and ``merge`` share, as :func:`evaluate`'s keywords."""
    return {"subset": args.subset, "backend": args.backend, "weights": args.weights,
            "raw_boxes": args.raw_boxes, "sequences": args.sequences, "results": args.results,
            "reports": args.reports, "short_term": args.short_term,
            "uncorrected": args.uncorrected}


def _threads(threads: Optional[int], workers: int) -> Optional[int]:
    """Threads per process: as asked, else one per worker process, else the libraries'."""
    return threads if threads is not None else (1 if workers > 1 else None)


def _open(dataset_name: str, root: Path, models: Sequence[str], subset: str, backend: str,
          weights: Optional[Path], raw_boxes: bool, sequences: Optional[Sequence[str]],
          results: Path, reports: Path, progress: bool, short_term: bool = False,
          uncorrected: bool = False):
    """The experiment over the selected sequences, and the name of each model's results."""
    for model in models:
        get_config(model)
    if len(set(models)) != len(models):
        raise ValueError(f"--model repeats a name: {', '.join(models)}")
    if weights is not None and len(models) != 1:
        raise ValueError("--weights applies to exactly one --model")
    dataset = open_dataset(dataset_name, root, subset)
    if sequences:
        dataset.select([p.strip() for item in sequences for p in item.split(",") if p.strip()])
    if progress and getattr(dataset, "missing", None):
        print(f"note: {len(dataset.missing)} sequences named in list.txt are not in the folder; "
              f"evaluating the {len(dataset)} present", file=sys.stderr)
    names = [tracker_name(m, backend, raw_boxes, weights, short_term, uncorrected)
             for m in models]
    return make_experiment(dataset, str(results), str(reports)), names


def _track_missing(experiment, models: Sequence[str], names: Sequence[str],
                   seq_names: Sequence[str], settings: RunSettings, workers: int,
                   folders: Sequence[Tuple[Path, str]], progress: bool) -> None:
    """Track the (model, sequence) pairs without results; ``folders`` (path, option) are
    checked writable first. On Ctrl-C, say what is left and raise KeyboardInterrupt again."""
    _check_settings(experiment, models, names, settings)
    tasks = [
        (model, seq) for model, name in zip(models, names) for seq in seq_names
        if not experiment.is_done(name, seq)
    ]
    skipped = len(models) * len(seq_names) - len(tasks)
    if progress:
        print(f"{experiment.dataset.experiment_name} at {experiment.dataset.root}: "
              f"{len(seq_names)} sequences x {len(models)} models; {len(tasks)} to track, "
              f"{skipped} finished before (skipped)", file=sys.stderr)
    if not tasks:
        return
    for folder, option in folders:
        ensure_writable_dir(folder, option)
    _check_models(models, settings)
    for model, name in zip(models, names):
        if experiment.recorded_settings(name) is None:
            experiment.record_settings(name, settings.recorded(model))
    by_model = dict(zip(models, names))
    try:
        _track(experiment, tasks, settings, workers, progress)
    except KeyboardInterrupt:
        left = sum(not experiment.is_done(by_model[m], s) for m, s in tasks)
        print(f"interrupted with {left} of {len(tasks)} sequences left; run the same command "
              "again to resume (finished sequences are kept)", file=sys.stderr)
        raise


def _check_settings(experiment, models: Sequence[str], names: Sequence[str],
                    settings: "RunSettings") -> None:
    """Refuse stored results that were tracked with other settings than ``settings`` (another
    tracking config, e.g. changed defaults) or before settings were recorded."""
    for model, name in zip(models, names):
        wanted = settings.recorded(model)
        stored = experiment.recorded_settings(name)
        if stored == wanted or (stored is None and not experiment.has_results(name)):
            continue
        folder = Path(experiment.result_dir) / name
        what = ("were tracked before the settings were recorded" if stored is None else
                "were tracked with other settings (" + "; ".join(_differences(stored, wanted))
                + ")")
        raise ValueError(f"the results of {model} in {folder} {what}; delete that folder and "
                         f"{Path(experiment.settings_file(name)).name} beside it to track again, "
                         "or pass another --results folder")


def _differences(stored: dict, wanted: dict, prefix: str = "") -> List[str]:
    """``key: stored -> wanted`` for each leaf that differs (nested keys joined by dots)."""
    differences = []
    for key in sorted(set(stored) | set(wanted)):
        old, new = stored.get(key), wanted.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            differences.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return differences


def _check_models(models: Sequence[str], settings: "RunSettings") -> None:
    """Fail before any work when a model's weights cannot be found or do not fit."""
    for model in models:
        settings.build(model)


@dataclass(frozen=True)
class RunSettings:
    """How each process builds and drives its trackers."""

    backend: str = "torch"
    threads: Optional[int] = None
    raw_boxes: bool = False
    weights: Optional[Path] = None
    short_term: bool = False
    uncorrected: bool = False

    def overrides(self) -> Dict[str, object]:
        """The tracking overrides of --short-term and --uncorrected."""
        overrides: Dict[str, object] = {"long_term": False} if self.short_term else {}
        if self.uncorrected:
            overrides["center_bias"] = (0.0, 0.0)
        return overrides

    def build(self, model: str, **options) -> api.Tracker:
        """A tracker of ``model`` as these settings ask (``options``: the backend's)."""
        return api.build_tracker(model, self.weights, backend=self.backend, **options,
                                 **self.overrides())

    def recorded(self, model: str) -> Dict[str, object]:
        """What the results of ``model`` depend on, as stored beside them: the tracking config
        (with these settings' overrides), the backend, the weights and the box protocol."""
        config = get_config(model).with_tracking(**self.overrides()).to_dict()
        config.pop("description")
        return {"config": config, "backend": self.backend, "raw_boxes": self.raw_boxes,
                "weights": None if self.weights is None else str(self.weights)}


class _Runner:
    """Tracks (model, sequence) tasks in one process; trackers are built on first use."""

    def __init__(self, experiment, settings: RunSettings, counter) -> None:
        if settings.threads is not None:
            set_thread_pools(settings.threads, torch=settings.backend == "torch")
        self.experiment = experiment
        self.settings = settings
        self.counter = counter
        self.trackers: Dict[str, ToolkitTracker] = {}

    def __call__(self, task: Tuple[str, str]) -> Tuple[str, str]:
        model, seq_name = task
        settings = self.settings
        if model not in self.trackers:
            self.trackers[model] = ToolkitTracker(
                tracker_name(model, settings.backend, settings.raw_boxes, settings.weights,
                             settings.short_term, settings.uncorrected),
                settings.build(model, **backend_options(settings.backend, settings.threads)),
                0.0 if settings.raw_boxes else self.experiment.dataset.box_origin,
                self.counter,
            )
        self.experiment.run_sequence(self.trackers[model], seq_name)
        return task


_WORKER: Optional[_Runner] = None


def _start_worker(experiment, settings: RunSettings, counter) -> None:
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the pool
    _WORKER = _Runner(experiment, settings, counter)


def _work(task: Tuple[str, str]) -> Tuple[str, str]:
    return _WORKER(task)


def _track(experiment, tasks: List[Tuple[str, str]], settings: RunSettings, workers: int,
           progress: bool) -> None:
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0)
    total = sum(len(experiment.dataset.image_files(seq)) for _, seq in tasks)
    with _Progress(total, counter, progress):
        if workers == 1:
            runner = _Runner(experiment, settings, counter)
            for task in tasks:
                runner(task)
            return
        longest_first = sorted(
            tasks, key=lambda task: len(experiment.dataset.image_files(task[1])), reverse=True
        )
        with context.Pool(min(workers, len(tasks)), initializer=_start_worker,
                          initargs=(experiment, settings, counter)) as pool:
            for _ in pool.imap_unordered(_work, longest_first):
                pass


class _Progress:
    """A tqdm bar over frames, fed from a shared frame counter by a background thread."""

    def __init__(self, total: int, counter, shown: bool, interval_s: float = 0.2) -> None:
        self._bar = tqdm(total=total, unit="frame", desc="tracking", dynamic_ncols=True,
                         disable=None if shown else True)
        self._counter = counter
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> "_Progress":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self._refresh()
        self._bar.close()

    def _poll(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._refresh()

    def _refresh(self) -> None:
        self._bar.update(self._counter.value - self._bar.n)


@dataclass(frozen=True)
class ModelAccuracy:
    """One tracker's numbers; a metric the report does not give (GOT-10k test) is None."""

    name: str
    success_auc: Optional[float] = None
    precision_20px: Optional[float] = None
    normalized_precision: Optional[float] = None
    ao: Optional[float] = None
    sr50: Optional[float] = None
    sr75: Optional[float] = None
    #: the toolkit's speed (mean of 1 / frame time); None when it has none
    fps: Optional[float] = None
    tracked_frames: int = 0
    #: time spent in init and update over all tracked frames
    seconds: float = 0.0
    #: GOT-10k test only: the archive to submit
    submission_archive: Optional[Path] = None
    #: share of the frames flagged lost whose IoU is below 0.1 (None: nothing flagged, or GOT-10k)
    lost_precision: Optional[float] = None
    #: share of the frames whose IoU is below 0.1 that are flagged lost
    lost_recall: Optional[float] = None

    @property
    def frames_per_second(self) -> Optional[float]:
        """All frames over all the time spent in init and update (None when untimed)."""
        return self.tracked_frames / self.seconds if self.seconds > 0 else None


#: table column -> ModelAccuracy field, in the table's order
_METRICS = {"AO": "ao", "SR0.5": "sr50", "SR0.75": "sr75", "success AUC": "success_auc",
            "precision@20px": "precision_20px", "norm. precision": "normalized_precision"}
#: ModelAccuracy field -> key of the toolkit's performance.json
_REPORT_KEYS = {"ao": "ao", "sr50": "sr", "sr75": "sr75", "success_auc": "success_score",
                "precision_20px": "precision_score",
                "normalized_precision": "normalized_precision_score"}


#: table column -> ModelAccuracy field of the lost flag's scores
_LOST_COLUMNS = {"lost: IoU<0.1": "lost_precision", "IoU<0.1: lost": "lost_recall"}


def _share(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}"


@dataclass(frozen=True)
class AccuracyReport:
    """What ``accuracy`` reports: one :class:`ModelAccuracy` per tracker, over the same
    sequences, with the table columns, the frames without a target and the report file."""

    experiment: str
    sequences: int
    frames: int
    metrics: Tuple[str, ...]
    models: Tuple[ModelAccuracy, ...]
    #: (sequence, frames without a target), for the sequences that have any
    absent: Tuple[Tuple[str, int], ...] = ()
    #: performance.json (None for GOT-10k test, which has no ground truth)
    report_file: Optional[Path] = None
    #: (sequence, frames labelled occluded or out of view but evaluated), LaSOT
    hidden: Tuple[Tuple[str, int], ...] = ()

    def __getitem__(self, name: str) -> ModelAccuracy:
        """The numbers of the tracker stored as ``name``."""
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(f"no tracker {name!r} in the report; it has "
                       f"{', '.join(m.name for m in self.models)}")

    @property
    def absent_frames(self) -> int:
        """Frames without a target over all sequences (left out of every metric)."""
        return sum(count for _, count in self.absent)

    @property
    def lost_flag_columns(self) -> bool:
        """Whether the table shows the lost flag's scores (some tracker has one)."""
        return any(m.lost_precision is not None or m.lost_recall is not None for m in self.models)

    def header(self) -> List[str]:
        lost = list(_LOST_COLUMNS) if self.lost_flag_columns else []
        return ["model", "sequences", "frames", *self.metrics, *lost, "fps", "frames/s"]

    def rows(self) -> List[List[str]]:
        """One row of formatted cells per tracker, under :meth:`header`."""
        rows = []
        for model in self.models:
            values = [f"{getattr(model, _METRICS[m]):.4f}" for m in self.metrics]
            if self.lost_flag_columns:
                values += [_share(getattr(model, field)) for field in _LOST_COLUMNS.values()]
            rows.append([
                model.name, str(self.sequences), str(self.frames), *values,
                "-" if model.fps is None else f"{model.fps:.1f}",
                "-" if model.frames_per_second is None else f"{model.frames_per_second:.1f}",
            ])
        return rows

    def absent_note(self) -> str:
        """One line counting the frames without a target per sequence ("" when there are none)."""
        if not self.absent:
            return ""
        per_sequence = ", ".join(f"{name} {count}" for name, count in self.absent)
        return (f"absent target (ground truth NaN or 0,0,0,0; left out of the metrics): "
                f"{self.absent_frames} frames: {per_sequence}")

    def hidden_note(self) -> str:
        """One line counting LaSOT's occluded / out-of-view frames ("" when there are none)."""
        if not self.hidden:
            return ""
        per_sequence = ", ".join(f"{name} {count}" for name, count in self.hidden)
        return (f"target labelled full_occlusion or out_of_view (evaluated, as the got10k "
                f"toolkit evaluates LaSOT): {sum(c for _, c in self.hidden)} frames: "
                f"{per_sequence}")

    def lines(self) -> List[str]:
        """The text ``accuracy`` prints: the table, the absent-frame notes, submission archives."""
        lines = markdown.text_table(self.header(), self.rows()).splitlines()
        if self.absent:
            lines.append(self.absent_note())
        if self.hidden:
            lines.append(self.hidden_note())
        lines += [f"{m.name}: GOT-10k test has no ground truth; submission archive "
                  f"{m.submission_archive}" for m in self.models if m.submission_archive]
        return lines

    def markdown(self, command: str) -> str:
        """The table as Markdown, with a note naming ``command`` (what made it) and the machine."""
        absent = self.absent_note()
        return "\n".join([
            *markdown.table(self.header(), self.rows()),
            "",
            f"Generated by `{command}` on {markdown.machine()}. fps: the got10k toolkit's speed "
            "(mean of 1 / frame time); frames/s: frames over total init + update time."
            + (" lost: IoU<0.1: the share of the frames flagged lost whose IoU with the ground "
               "truth is below 0.1; IoU<0.1: lost: the share of the frames below 0.1 that are "
               "flagged lost (frames after the first)." if self.lost_flag_columns else "")
            + (f" {absent[0].upper()}{absent[1:]}." if absent else ""),
            "",
        ])


def _report(experiment, names: Sequence[str]) -> AccuracyReport:
    """Have the toolkit write its report for ``names`` and gather the numbers."""
    import matplotlib

    matplotlib.use("Agg")
    performance = experiment.report_quietly(names)
    dataset = experiment.dataset
    metrics = list(_METRICS)[3:]
    if isinstance(experiment, GOT10kExperiment):
        metrics = list(_METRICS) if performance is not None else []
    models = []
    for name in names:
        tracked_frames, seconds = experiment.frames_and_seconds(name)
        if performance is None:
            models.append(ModelAccuracy(name, tracked_frames=tracked_frames, seconds=seconds,
                                        submission_archive=Path(experiment.submission_archive(name))))
            continue
        overall = performance[name]["overall"]
        scores = {_METRICS[m]: float(overall[_REPORT_KEYS[_METRICS[m]]]) for m in metrics}
        fps = float(overall["speed_fps"])
        flags = {field: overall.get(field) for field in _LOST_COLUMNS.values()}
        models.append(ModelAccuracy(name, **scores, **flags, fps=fps if fps > 0 else None,
                                    tracked_frames=tracked_frames, seconds=seconds))
    absent: Tuple[Tuple[str, int], ...] = ()
    hidden: Tuple[Tuple[str, int], ...] = ()
    if performance is not None:
        # The counts depend on the ground truth only: the first tracker's report gives them.
        absent = tuple((seq_name, int(scores["absent_frames"]))
                       for seq_name, scores in performance[names[0]]["seq_wise"].items()
                       if scores["absent_frames"])
        hidden = tuple((seq_name, int(scores["hidden_frames"]))
                       for seq_name, scores in performance[names[0]]["seq_wise"].items()
                       if scores.get("hidden_frames"))
    return AccuracyReport(
        experiment=dataset.experiment_name,
        sequences=len(dataset),
        frames=sum(len(dataset.image_files(s)) for s in dataset.seq_names),
        metrics=tuple(metrics),
        models=tuple(models),
        absent=absent,
        report_file=None if performance is None else Path(experiment.report_file(names)),
        hidden=hidden,
    )


def _print(report: AccuracyReport, args: argparse.Namespace) -> None:
    """What ``accuracy`` and ``merge`` print, and the Markdown file of ``--markdown``."""
    print("\n".join(report.lines()))
    if report.report_file is not None:
        print(f"report: {report.report_file} (plots beside it)", file=sys.stderr)
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(report.markdown(_command(args)))
        print(f"markdown: {args.markdown}", file=sys.stderr)


def _command(args: argparse.Namespace) -> str:
    """The command line of this run, for the note under the Markdown table."""
    argv = ["python", "-m", "tracker.benchmark", args.command, *_data_arguments(args)]
    if getattr(args, "workers", 1) != 1:
        argv += ["--workers", args.workers]
    if getattr(args, "threads", None) is not None:
        argv += ["--threads", args.threads]
    return quote_command([*argv, "--markdown", args.markdown])


def _data_arguments(args: argparse.Namespace) -> List[str]:
    """The options of ``args`` that select data and models, as :func:`data_arguments` gives them."""
    return data_arguments(args.dataset, args.root, args.models, **_options(args))


def data_arguments(
    dataset: str, root: Path, models: Sequence[str], *, subset: str = "val",
    backend: str = "torch", weights: Optional[Path] = None, raw_boxes: bool = False,
    sequences: Optional[Sequence[str]] = None, results: Path = Path("results"),
    reports: Path = Path("reports"), short_term: bool = False, uncorrected: bool = False,
) -> List[str]:
    """The ``accuracy``/``merge`` options selecting these data and models (those of
    :func:`evaluate`), as a command line gives them: defaults are left out."""
    parts = ["--dataset", dataset, "--root", str(root)]
    if dataset == "got10k":
        parts += ["--subset", subset]
    for model in models:
        parts += ["--model", model]
    if backend != "torch":
        parts += ["--backend", backend]
    if weights is not None:
        parts += ["--weights", str(weights)]
    if raw_boxes:
        parts.append("--raw-boxes")
    if short_term:
        parts.append("--short-term")
    if uncorrected:
        parts.append("--uncorrected")
    for item in sequences or []:
        parts += ["--sequences", item]
    if Path(results) != Path("results"):
        parts += ["--results", str(results)]
    if Path(reports) != Path("reports"):
        parts += ["--reports", str(reports)]
    return parts
