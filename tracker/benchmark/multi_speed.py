"""``speed --targets``: the batched ``MultiTracker`` against N independent trackers.

For every model, backend, thread count and number of targets N: N boxes in the clip's first
frame (the clip's box and N - 1 boxes of its size elsewhere, :func:`target_boxes`), then per
frame the batched ``MultiTracker.update`` (one network call for all N targets), N
``Tracker.update`` calls of independent trackers sharing one network and, for NanoTrack's
published ONNX files, N ``cv2.TrackerNano.update`` calls. All of them take turns over the
same frames (:func:`.speed.time_interleaved`), so a drift of the machine favours none.
Frame FPS = frames / their total time with all N targets; ms per target = the median frame
time / N.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..api import Tracker
from ..cli_args import positive_int, set_thread_pools
from ..config import ModelConfig
from ..geometry import Box
from ..loops import NetworkRunner
from ..multi import MultiTracker
from . import markdown, speed, step_costs

#: The contenders of one model, backend and N, in the order of the table.
BATCHED, INDEPENDENT, OPENCV = "batched", "independent", "cv2.TrackerNano"
DEFAULT_TARGETS = (1, 2, 4, 8, 16)
REALTIME_FPS = 30.0


@dataclass(frozen=True)
class MultiTiming:
    """One contender tracking ``targets`` targets: ``tracker`` (the model, as labelled by the
    speed command) on ``backend`` (``opencv`` for ``cv2.TrackerNano``)."""

    tracker: str
    contender: str
    backend: str
    threads: int
    targets: int
    frames: int
    median_ms: float
    p95_ms: float
    fps: float
    per_target_ms: float
    vs_independent: Optional[float] = None
    vs_opencv: Optional[float] = None


@dataclass(frozen=True)
class MultiSpeedReport:
    """What :func:`measure_multi_speed` measured: the clip, the timed frames per contender,
    the target counts and one timing per model, backend, contender, thread count and count.
    ``vs_independent`` and ``vs_opencv`` (batched rows only) are the batched tracker's frame
    FPS over the independent trackers' and over N ``cv2.TrackerNano``'s."""

    clip: str
    frames: int
    targets: List[int]
    timings: List[MultiTiming] = field(default_factory=list)


def register(parser: argparse.ArgumentParser) -> None:
    """Add ``--targets`` and ``--plot`` to the ``speed`` command's ``parser``."""
    parser.add_argument("--targets", default=None, metavar="LIST",
                        help="comma-separated target counts, such as 1,2,4,8,16: time the batched "
                             "MultiTracker against as many independent trackers (and "
                             "cv2.TrackerNano) with that many targets in every frame")
    parser.add_argument("--plot", type=Path, default=None, metavar="FILE",
                        help="with --targets: also draw frame FPS against the number of targets "
                             "as a PNG")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The ``speed`` command: :func:`.step_costs.run` with ``--steps``, :func:`.speed.run`
    without ``--targets``; with it,
    :func:`measure_multi_speed`, printed as text or JSON, written as Markdown and plotted."""
    if args.steps:
        if args.targets is not None or args.plot is not None:
            raise ValueError("--steps times one target; leave out --targets and --plot")
        return step_costs.run(args)
    if args.targets is None:
        if args.plot is not None:
            raise ValueError("--plot applies with --targets")
        return speed.run(args)
    targets = speed.count_list(args.targets, "--targets")
    models = args.models or ["nanotrack-v2"]
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    speed.check_choices(models, backends, ("--model", "--backend"))
    if args.weights is not None and len(models) != 1:
        raise ValueError("--weights applies to exactly one --model")
    report = measure_multi_speed(
        models, targets=targets, backends=backends,
        threads=speed.count_list(args.threads, "--threads"), frames=speed.frame_count(args.frames),
        clip=args.clip, weights=args.weights, untrained=args.untrained,
        baseline=not args.no_baseline, progress=not args.json,
    )
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print(format_multi_report(report))
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        plot = [] if args.plot is None else ["--plot", args.plot]
        command = speed.command_line(args, ["--targets", args.targets, *plot])
        args.markdown.write_text(format_multi_markdown(report, command))
    if args.plot is not None:
        plot_multi_speed([report], args.plot)
    return 0


def target_boxes(box: Box, count: int, frame_size: Tuple[int, int]) -> List[Box]:
    """``count`` distinct boxes of ``box``'s size inside a ``frame_size = (width, height)``
    frame: ``box`` itself first, then tiles of the frame cut in cells of the box's size that
    do not overlap ``box``, spread evenly over the free cells in reading order.

    Deterministic; ``ValueError`` when the frame has fewer free cells than ``count - 1``.
    """
    count = positive_int(count, "count")
    x0, y0, w, h = (float(v) for v in box)
    width, height = frame_size
    columns, rows = int(width // w), int(height // h)
    free = [(column * w, row * h) for row in range(rows) for column in range(columns)
            if not (column * w < x0 + w and x0 < (column + 1) * w
                    and row * h < y0 + h and y0 < (row + 1) * h)]
    if len(free) < count - 1:
        raise ValueError(f"count: a {width}x{height} frame holds {len(free) + 1} boxes of "
                         f"{w:g}x{h:g} that do not overlap, not {count}")
    others = count - 1
    picked = [free[int((index + 0.5) * len(free) / others)] for index in range(others)]
    return [(x0, y0, w, h)] + [(x, y, w, h) for x, y in picked]


def measure_multi_speed(
    models: Sequence[str] = ("nanotrack-v2",),
    *,
    targets: Sequence[int] = DEFAULT_TARGETS,
    backends: Sequence[str] = ("torch",),
    threads: Sequence[int] = (2,),
    frames: Optional[int] = speed.DEFAULT_FRAMES,
    clip: Optional[Path] = None,
    weights: Optional[Path] = None,
    untrained: bool = False,
    baseline: bool = True,
    progress: bool = False,
) -> MultiSpeedReport:
    """Time the batched ``MultiTracker.update`` against N independent ``Tracker.update`` calls
    (and N ``cv2.TrackerNano`` for the NanoTrack models OpenCV runs, unless not
    ``baseline``) for every N in ``targets``, model, backend and thread count.

    The other arguments are :func:`.speed.measure_speed`'s. Every contender of one thread
    count and N takes turns with the others over the same frames. Nothing is printed or
    written (see :func:`format_multi_report`, :func:`format_multi_markdown`,
    :func:`plot_multi_speed`).
    """
    models, backends = list(models), list(backends)
    speed.check_choices(models, backends, ("models", "backends"))
    if weights is not None and len(models) != 1:
        raise ValueError(f"weights: expected exactly one model, got {len(models)} models")
    if not targets:
        raise ValueError("targets: expected at least one target count")
    counts = sorted({positive_int(n, "targets") for n in targets})
    if not threads:
        raise ValueError("threads: expected at least one thread count")
    threads = [positive_int(count, "threads") for count in threads]
    if frames is not None:
        frames = positive_int(frames, "frames")
    name, images, box = speed.load_clip(
        clip, None if frames is None else frames + speed.WARMUP_FRAMES + 1)
    height, width = images[0].shape[:2]
    boxes = {n: target_boxes(box, n, (width, height)) for n in counts}
    opencv_models = [m for m in models if baseline and m in speed.OPENCV_NANO_VERSIONS
                     and speed._opencv_files(m)]
    timings: Dict[Tuple[str, str, str, int, int], MultiTiming] = {}
    with tempfile.TemporaryDirectory(prefix="tracker-speed-") as scratch:
        builder = speed.Builder(weights, untrained, Path(scratch))
        for thread_count in threads:
            set_thread_pools(thread_count)
            networks = {(model, backend): builder.network(model, backend, thread_count)
                        for model in models for backend in backends}
            for n in counts:
                contenders = _contenders(networks, opencv_models, images[0], boxes[n])
                measured = speed.time_interleaved(
                    [update for *_, update in contenders], images[1:], speed.WARMUP_FRAMES,
                    progress=f"{n} target(s) on {thread_count} thread(s)" if progress else None,
                )
                for (model, label, kind, backend, _), calls in zip(contenders, measured):
                    timing = speed.summarize(label, backend, thread_count, calls.seconds)
                    timings[model, backend, kind, thread_count, n] = MultiTiming(
                        tracker=label, contender=kind, backend=backend, threads=thread_count,
                        targets=n, frames=timing.frames, median_ms=timing.median_ms,
                        p95_ms=timing.p95_ms, fps=timing.fps, per_target_ms=timing.median_ms / n,
                    )
    ours = [(backend, (BATCHED, INDEPENDENT)) for backend in backends]
    rows = [_with_ratios(timings, (model, backend, kind), thread_count, n)
            for thread_count in threads for model in models
            for backend, kinds in ours + ([("opencv", (OPENCV,))] if model in opencv_models else [])
            for n in counts for kind in kinds]
    return MultiSpeedReport(clip=name, frames=len(images) - speed.WARMUP_FRAMES - 1,
                            targets=counts, timings=rows)


def _contenders(
    networks: Dict[Tuple[str, str], Tuple[str, ModelConfig, NetworkRunner]],
    opencv_models: Sequence[str],
    first_frame: np.ndarray,
    boxes: Sequence[Box],
) -> List[Tuple[str, str, str, str, Callable[[np.ndarray], object]]]:
    """``(model, label, contender, backend, update)`` of every contender, each tracking
    ``boxes`` from ``first_frame``: per network a ``MultiTracker`` and as many ``Tracker``'s
    as boxes, all on that network; per model in ``opencv_models`` a ``cv2.TrackerNano`` per
    box."""
    contenders = []
    for (model, backend), (label, config, runner) in networks.items():
        multi = MultiTracker(config, runner)
        for box in boxes:
            multi.add(first_frame, box)
        trackers = [Tracker(config, runner) for _ in boxes]
        for trk, box in zip(trackers, boxes):
            trk.init(first_frame, box)
        contenders += [(model, label, BATCHED, backend, multi.update),
                       (model, label, INDEPENDENT, backend, _each(t.update for t in trackers))]
    for model in opencv_models:
        nanos = [speed._opencv_tracker(model, first_frame, box) for box in boxes]
        contenders.append((model, model, OPENCV, "opencv", _each(nanos)))
    return contenders


def _each(updates: Iterable[Callable[[np.ndarray], object]]) -> Callable[[np.ndarray], None]:
    """One call that runs every one of ``updates`` on a frame, in order."""
    updates = list(updates)

    def update_all(frame: np.ndarray) -> None:
        for update in updates:
            update(frame)

    return update_all


def _with_ratios(timings: Dict[Tuple[str, str, str, int, int], MultiTiming],
                 key: Tuple[str, str, str], threads: int, targets: int) -> MultiTiming:
    """The timing of ``key`` = (model, backend, contender); a batched one with its FPS over
    the independent trackers' and over ``cv2.TrackerNano``'s (where timed)."""
    model, backend, kind = key
    timing = timings[model, backend, kind, threads, targets]
    if kind != BATCHED:
        return timing
    independent = timings[model, backend, INDEPENDENT, threads, targets]
    opencv = timings.get((model, "opencv", OPENCV, threads, targets))
    return MultiTiming(**{**asdict(timing), "vs_independent": timing.fps / independent.fps,
                          "vs_opencv": None if opencv is None else timing.fps / opencv.fps})


#: Columns of the text and the Markdown table; the last one only in a run with the baseline.
TABLE_HEADER = ("tracker", "backend", "threads", "targets", "contender", "frame ms", "p95 ms",
                "frame FPS", "ms/target", "vs independent", "vs cv2.TrackerNano")


def _has_baseline(report: MultiSpeedReport) -> bool:
    return any(t.contender == OPENCV for t in report.timings)


def table_header(report: MultiSpeedReport) -> Tuple[str, ...]:
    """The columns of ``report``'s table (without the baseline ratio in a run without it)."""
    return TABLE_HEADER if _has_baseline(report) else TABLE_HEADER[:-1]


def table_rows(report: MultiSpeedReport) -> List[List[str]]:
    """One row of :func:`table_header` cells per timing."""
    columns = len(table_header(report))
    return [
        [t.tracker, t.backend, str(t.threads), str(t.targets), t.contender, f"{t.median_ms:.2f}",
         f"{t.p95_ms:.2f}", f"{t.fps:.1f}", f"{t.per_target_ms:.2f}",
         speed._cell(t.vs_independent, ".2f", "x"), speed._cell(t.vs_opencv, ".2f", "x")][:columns]
        for t in report.timings
    ]


def _notes(report: MultiSpeedReport) -> str:
    opencv = (f"; 'vs cv2.TrackerNano' = batched frame FPS / that of N {OPENCV} on the same "
              "ONNX files") if _has_baseline(report) else ""
    return (f"frame = one update of all N targets; frame ms and p95 ms of the frame times; frame "
            f"FPS = frames / their total time; ms/target = frame ms / N; the contenders timed in "
            f"turns over {speed.ROUNDS} rounds; 'vs independent' = batched frame FPS / that of "
            f"N independent trackers sharing the network{opencv}")


def format_multi_report(report: MultiSpeedReport) -> str:
    """A plain-text table of the report, each column as wide as its widest cell."""
    return "\n".join([
        f"clip: {report.clip}, {report.frames} timed frames after {speed.WARMUP_FRAMES} warm-up "
        f"frames; targets: {', '.join(map(str, report.targets))}",
        "",
        markdown.text_table(table_header(report), table_rows(report), left_columns=2),
        "",
        _notes(report) + ".",
    ])


def format_multi_markdown(report: MultiSpeedReport, command: str) -> str:
    """The report as a Markdown table (the text table's columns), with the command and
    machine under it."""
    return "\n".join([
        *markdown.table(table_header(report), table_rows(report)),
        "",
        f"Generated by `{command}` on {markdown.machine()}: `update` (crop, network, decoding) "
        f"over {report.frames} frames of {Path(report.clip).name} after {speed.WARMUP_FRAMES} "
        f"warm-up frames, the clip's box and N - 1 boxes of its size elsewhere in the first "
        f"frame; {_notes(report)}.",
        "",
    ])


def plot_multi_speed(
    reports: Sequence[MultiSpeedReport], path: Path, titles: Optional[Sequence[str]] = None
) -> Path:
    """Draw frame FPS against the number of targets into the PNG ``path`` and return it: one
    panel per report (``titles`` above them), one line per tracker, backend, contender and
    thread count, log-2 x axis, log y axis, a dashed line at 30 FPS."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if not reports:
        raise ValueError("reports: expected at least one report to plot")
    if titles is not None and len(titles) != len(reports):
        raise ValueError(f"titles: expected {len(reports)} titles, got {len(titles)}")
    figure = Figure(figsize=(6.4 * len(reports), 4.8), dpi=100)
    FigureCanvasAgg(figure)
    for index, report in enumerate(reports):
        axes = figure.add_subplot(1, len(reports), index + 1)
        lines: Dict[Tuple[str, str, int, str], List[MultiTiming]] = {}
        for timing in report.timings:
            key = (timing.tracker, timing.backend, timing.threads, timing.contender)
            lines.setdefault(key, []).append(timing)
        several_threads = len({t.threads for t in report.timings}) > 1
        networks = list(dict.fromkeys(key[:3] for key in lines))  # one colour each
        for (tracker, backend, threads, contender), points in lines.items():
            if contender == OPENCV:
                label = f"{contender} ({tracker} ONNX)"
            else:
                label = f"{tracker}, {backend}: {contender}"
            if several_threads:
                label += f", {threads} threads"
            axes.plot([p.targets for p in points], [p.fps for p in points], marker="o",
                      color=f"C{networks.index((tracker, backend, threads)) % 10}",
                      linestyle="-" if contender == BATCHED else ":", label=label)
        axes.axhline(REALTIME_FPS, color="black", linestyle="--", linewidth=1,
                     label=f"{REALTIME_FPS:g} FPS")
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axes.yaxis.set_minor_formatter(NullFormatter())
        axes.set_xticks(report.targets)
        axes.set_xticklabels([str(n) for n in report.targets])
        axes.set_xlabel("targets per frame")
        axes.set_ylabel("frame FPS (all targets)")
        if titles is not None:
            axes.set_title(titles[index])
        axes.grid(alpha=0.3, which="both")
        axes.legend(fontsize="small")
    figure.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format="png")
    return target
