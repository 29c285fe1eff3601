"""accuracy and merge: benchmark accuracy through the got10k toolkit, offline.

accuracy tracks every sequence of an OTB-, LaSOT- or GOT-10k-layout folder with each --model,
writes the results in the toolkit's layout under --results, has the toolkit compute the report
under --reports (performance.json, success and precision plots as PNG) and prints one row per
model. Finished sequences are skipped, so an interrupted run resumes where it stopped.
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
                             "(<subset>/<seq>/*.jpg + groundtruth.txt)")
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
    model: str, backend: str, raw_boxes: bool = False, weights: Optional[Path] = None
) -> str:
    """The name results are stored under: the model, suffixed by a non-default backend, by
    explicit weights and by the raw-box protocol."""
    name = model if backend == "torch" else f"{model}-{backend}"
    if weights is not None:
        name = f"{name}-{Path(weights).stem}"
    return f"{name}-raw" if raw_boxes else name


def run_accuracy(args: argparse.Namespace) -> int:
    """``accuracy``: track what is not done yet, then report (unless sharded)."""
    dataset, experiment = _open(args)
    names = [tracker_name(m, args.backend, args.raw_boxes, args.weights) for m in args.models]
    seq_names = dataset.seq_names
    if args.shard is not None:
        index, count = args.shard
        seq_names = seq_names[index - 1::count]
    tasks = [
        (model, seq) for model, name in zip(args.models, names) for seq in seq_names
        if not experiment.is_done(name, seq)
    ]
    skipped = len(args.models) * len(seq_names) - len(tasks)
    print(f"{dataset.experiment_name} at {dataset.root}: {len(seq_names)} sequences x "
          f"{len(args.models)} models; {len(tasks)} to track, {skipped} finished before (skipped)",
          file=sys.stderr)
    if tasks:
        ensure_writable_dir(args.results, "--results")
        if args.shard is None:
            ensure_writable_dir(args.reports, "--reports")
            if args.markdown is not None:
                ensure_writable_dir(args.markdown.parent, "--markdown")
        _check_models(args.models, args.backend, args.weights)
        threads = args.threads if args.threads is not None else (1 if args.workers > 1 else None)
        try:
            settings = RunSettings(args.backend, threads, args.raw_boxes, args.weights)
            _track(experiment, tasks, settings, args.workers)
        except KeyboardInterrupt:
            left = sum(not experiment.is_done(tracker_name(m, args.backend, args.raw_boxes, args.weights), s)
                       for m, s in tasks)
            print(f"interrupted with {left} of {len(tasks)} sequences left; run the same command "
                  "again to resume (finished sequences are kept)", file=sys.stderr)
            return 130
    if args.shard is not None:
        print(f"shard {args.shard[0]}/{args.shard[1]} done ({len(seq_names)} sequences); once "
              f"every shard is done, build the report with: python -m tracker.benchmark merge "
              f"{quote_command(_data_arguments(args))}", file=sys.stderr)
        return 0
    return _report(args, experiment, names)


def run_merge(args: argparse.Namespace) -> int:
    """``merge``: the report of ``accuracy`` from existing result files."""
    _, experiment = _open(args)
    return _report(
        args, experiment,
        [tracker_name(m, args.backend, args.raw_boxes, args.weights) for m in args.models],
    )


def _open(args: argparse.Namespace):
    for model in args.models:
        get_config(model)
    if len(set(args.models)) != len(args.models):
        raise ValueError(f"--model repeats a name: {', '.join(args.models)}")
    if args.weights is not None and len(args.models) != 1:
        raise ValueError("--weights applies to exactly one --model")
    dataset = open_dataset(args.dataset, args.root, args.subset)
    if args.sequences:
        dataset.select([p.strip() for item in args.sequences for p in item.split(",") if p.strip()])
    if getattr(dataset, "missing", None):
        print(f"note: {len(dataset.missing)} sequences named in list.txt are not in the folder; "
              f"evaluating the {len(dataset)} present", file=sys.stderr)
    return dataset, make_experiment(dataset, str(args.results), str(args.reports))


def _check_models(models: Sequence[str], backend: str, weights: Optional[Path]) -> None:
    """Fail before any work when a model's weights cannot be found or do not fit."""
    for model in models:
        api.build_tracker(model, weights, backend=backend)


@dataclass(frozen=True)
class RunSettings:
    """How each process builds and drives its trackers."""

    backend: str = "torch"
    threads: Optional[int] = None
    raw_boxes: bool = False
    weights: Optional[Path] = None


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
                tracker_name(model, settings.backend, settings.raw_boxes, settings.weights),
                api.build_tracker(
                    model, settings.weights, backend=settings.backend,
                    **backend_options(settings.backend, settings.threads),
                ),
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


def _track(experiment, tasks: List[Tuple[str, str]], settings: RunSettings, workers: int) -> None:
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0)
    total = sum(len(experiment.dataset.image_files(seq)) for _, seq in tasks)
    with _Progress(total, counter):
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

    def __init__(self, total: int, counter, interval_s: float = 0.2) -> None:
        self._bar = tqdm(total=total, unit="frame", desc="tracking", dynamic_ncols=True,
                         disable=None)
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


def _report(args: argparse.Namespace, experiment, names: List[str]) -> int:
    import matplotlib

    matplotlib.use("Agg")
    performance = experiment.report_quietly(names)
    header, rows = summary_table(experiment, names, performance)
    table = markdown.text_table(header, rows)
    print(table)
    absent = absent_note(performance, names)
    if absent:
        print(absent)
    if performance is None:
        for name in names:
            print(f"{name}: GOT-10k test has no ground truth; submission archive "
                  f"{experiment.submission_archive(name)}")
    else:
        print(f"report: {experiment.report_file(names)} (plots beside it)", file=sys.stderr)
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(_markdown(args, header, rows, absent))
        print(f"markdown: {args.markdown}", file=sys.stderr)
    return 0


def summary_table(experiment, names: Sequence[str],
                  performance: Optional[dict]) -> Tuple[List[str], List[List[str]]]:
    """Header and one row per tracker, from the toolkit's ``performance`` dict."""
    dataset = experiment.dataset
    frames = sum(len(dataset.image_files(s)) for s in dataset.seq_names)
    metrics = ["success AUC", "precision@20px", "norm. precision"]
    keys = ["success_score", "precision_score", "normalized_precision_score"]
    if isinstance(experiment, GOT10kExperiment):
        metrics = ["AO", "SR0.5", "SR0.75", *metrics] if performance is not None else []
        keys = ["ao", "sr", "sr75", *keys]
    header = ["model", "sequences", "frames", *metrics, "fps", "frames/s"]
    rows = []
    for name in names:
        tracked_frames, seconds = experiment.frames_and_seconds(name)
        throughput = f"{tracked_frames / seconds:.1f}" if seconds > 0 else "-"
        if performance is None:
            rows.append([name, str(len(dataset)), str(frames), "-", throughput])
            continue
        overall = performance[name]["overall"]
        values = [f"{overall[key]:.4f}" for key in keys]
        fps = overall["speed_fps"]
        rows.append([name, str(len(dataset)), str(frames), *values,
                     f"{fps:.1f}" if fps > 0 else "-", throughput])
    return header, rows


def absent_note(performance: Optional[dict], names: Sequence[str]) -> str:
    """One line counting the frames without a target per sequence ("" when there are none).

    The counts are the report's ``absent_frames``; they depend on the ground truth only, so the
    first tracker's report gives them.
    """
    if performance is None:
        return ""
    report = performance[names[0]]
    per_sequence = [
        f"{seq_name} {scores['absent_frames']}"
        for seq_name, scores in report["seq_wise"].items() if scores["absent_frames"]
    ]
    if not per_sequence:
        return ""
    return (f"absent target (ground truth NaN or 0,0,0,0; left out of the metrics): "
            f"{report['overall']['absent_frames']} frames: {', '.join(per_sequence)}")


def _markdown(args: argparse.Namespace, header: Sequence[str], rows: Sequence[Sequence[str]],
              absent: str) -> str:
    lines = markdown.table(header, rows)
    argv = ["python", "-m", "tracker.benchmark", args.command, *_data_arguments(args)]
    if getattr(args, "workers", 1) != 1:
        argv += ["--workers", args.workers]
    if getattr(args, "threads", None) is not None:
        argv += ["--threads", args.threads]
    command = quote_command([*argv, "--markdown", args.markdown])
    return "\n".join([
        *lines,
        "",
        f"Generated by `{command}` on {markdown.machine()}. fps: the got10k toolkit's speed (mean of "
        "1 / frame time); frames/s: frames over total init + update time."
        + (f" {absent[0].upper()}{absent[1:]}." if absent else ""),
        "",
    ])


def _data_arguments(args: argparse.Namespace) -> List[str]:
    """The options that select data and models, as a command line would give them."""
    parts = ["--dataset", args.dataset, "--root", str(args.root)]
    if args.dataset == "got10k":
        parts += ["--subset", args.subset]
    for model in args.models:
        parts += ["--model", model]
    if args.backend != "torch":
        parts += ["--backend", args.backend]
    if args.weights is not None:
        parts += ["--weights", str(args.weights)]
    if args.raw_boxes:
        parts.append("--raw-boxes")
    for item in args.sequences or []:
        parts += ["--sequences", item]
    if args.results != Path("results"):
        parts += ["--results", str(args.results)]
    if args.reports != Path("reports"):
        parts += ["--reports", str(args.reports)]
    return parts
