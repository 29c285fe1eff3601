"""``speed``: how fast ``Tracker.update`` runs, next to the machine's limit and OpenCV.

Times the whole ``update`` (crop, network, decoding) over a fixed clip decoded into memory
beforehand, after a warm-up. The network's FLOPs per frame are counted from the graph of the
search branch (:mod:`.flops`: torch's ``FlopCounterMode``, or without torch the ONNX graph; 2
FLOPs per multiply-add of every convolution and matrix product); the machine's limit is a large fp32 matrix product timed with the same
thread count. Baseline in the same run: OpenCV's ``cv2.TrackerNano`` on NanoTrack's
published ONNX files, when they are present. The trackers of one thread count take turns
(the timed frames cut into rounds), so a drift of the machine does not favour one of them.
Each tracker's CPU time per frame (this process, all its threads) is measured over its turns;
``--camera-fps`` paces the calls as a camera delivers frames, so that the CPU time also counts
what a tracker burns while it waits for the next frame (spinning thread pools).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from .. import api, clips
from ..cli_args import positive_int, quote_command, set_thread_pools
from . import markdown
from .flops import network_flops
from .load import busy_processes
from ..config import ModelConfig
from ..geometry import Box
from ..loops import NetworkRunner
from ..zoo import cpu_policy, get_config, list_models

DEFAULT_FRAMES = 300
WARMUP_FRAMES = 10
ROUNDS = 5
LIMIT_NOTE = "above 100%: the convolutions ran closer to the processor's peak than the matmul"
MATMUL_SIZE = 2048
OPENCV_NANO_VERSIONS = ("nanotrack-v2", "nanotrack-v1")  # OpenCV cannot run v3's 15x15 map


@dataclass(frozen=True)
class Timing:
    """One tracker at one thread count."""

    tracker: str
    backend: str
    threads: int
    frames: int
    median_ms: float
    p95_ms: float
    fps: float
    cpu_ms: Optional[float] = None
    load: int = 0
    session: str = "-"
    gflops_per_frame: Optional[float] = None
    achieved_gflops: Optional[float] = None
    limit_ratio: Optional[float] = None
    vs_baseline: Optional[float] = None


@dataclass(frozen=True)
class SpeedReport:
    """What :func:`measure_speed` measured: the clip, the timed frames per tracker, the machine's
    fp32 matmul limit (the fastest library, and each one) per thread count, and the timings."""

    clip: str
    frames: int
    camera_fps: Optional[float] = None
    machine_gflops: Dict[int, float] = field(default_factory=dict)
    matmul_gflops: Dict[int, Dict[str, float]] = field(default_factory=dict)
    timings: List[Timing] = field(default_factory=list)


def register(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``speed`` command to ``commands``; returns its parser (``--targets`` and
    ``--plot`` are added by :func:`.multi_speed.register`)."""
    parser = commands.add_parser(
        "speed",
        help="time Tracker.update per model against the machine's matmul limit and cv2.TrackerNano",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  python -m tracker.benchmark speed --model nanotrack-v2 --threads 1,2 --json",
    )
    parser.add_argument("--model", action="append", dest="models", metavar="NAME",
                        help="model to time (repeatable; default nanotrack-v2); one of "
                             + ", ".join(list_models()))
    parser.add_argument("--backend", default="torch",
                        help="comma-separated backends: torch, onnxruntime (default torch)")
    parser.add_argument("--threads", default="2", help="comma-separated thread counts (default 2)")
    parser.add_argument("--frames", default=str(DEFAULT_FRAMES), metavar="N|all",
                        help=f"frames timed after the warm-up, or 'all' for the whole clip "
                             f"(decoded into memory: about 2 GB for airplane-1; default {DEFAULT_FRAMES})")
    parser.add_argument("--clip", type=Path, default=None,
                        help="video to time on, with a .txt of 1-based x,y,w,h boxes beside it "
                             "(default: a generated clip, a textured square drifting over noise)")
    parser.add_argument("--weights", type=Path, default=None,
                        help="weights for the one --model: a checkpoint (torch) or an export "
                             "folder or sidecar such as model-int8.json (onnxruntime)")
    parser.add_argument("--untrained", action="store_true",
                        help="time models whose weights (or onnxruntime export) are not present "
                             "with untrained weights; a network's cost does not depend on its values")
    parser.add_argument("--load", default="0", metavar="LIST",
                        help="comma-separated numbers of busy background processes to time under, "
                             "such as 0,1,2 (each spins on a core; all are stopped when timing "
                             "ends, also on Ctrl-C; default 0)")
    parser.add_argument("--thread-choice", choices=("model", "fixed"), default="model",
                        help="onnxruntime threads: 'model' (default) uses the model's CPU policy "
                             "(NanoTrack: whichever of 1 or 2 threads has been faster lately) up "
                             "to --threads; 'fixed' runs exactly --threads")
    parser.add_argument("--spinning", choices=("model", "on", "off"), default="model",
                        help="whether onnxruntime's threads spin between operators (default: the "
                             "model's CPU policy)")
    parser.add_argument("--camera-fps", type=camera_rate, default=None, metavar="F",
                        help="call update at most F times a second, sleeping between calls as a "
                             "camera loop waits for its next frame, so that 'CPU ms' also counts "
                             "what a tracker burns while waiting (default: back to back)")
    parser.add_argument("--steps", action="store_true",
                        help="time each step of our trackers (crop, blob, network, decode) "
                             "instead of whole updates")
    parser.add_argument("--no-baseline", action="store_true", help="skip cv2.TrackerNano")
    parser.add_argument("--json", action="store_true", help="print the report as JSON only")
    parser.add_argument("--markdown", type=Path, default=None, metavar="FILE",
                        help="also write the table as Markdown, with the command that made it")
    parser.set_defaults(run=run)
    return parser


def count_list(text: str, option: str) -> List[int]:
    """Comma-separated positive counts, such as ``1,2`` (``--threads``, ``--targets``);
    ``option`` names the option in the error."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise ValueError(f"{option}: expected comma-separated positive integers, got {text!r}")
    return [positive_int(part, option) for part in parts]


def camera_rate(text: str) -> float:
    """``--camera-fps``: a frame rate above 0 (at most 1000)."""
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if not 0 < rate <= 1000:
        raise argparse.ArgumentTypeError(f"expected frames per second in (0, 1000], got {text!r}")
    return rate


def frame_count(text: str) -> Optional[int]:
    """``--frames``: a positive count, or ``None`` for 'all'."""
    if text.strip().lower() == "all":
        return None
    try:
        return positive_int(text)
    except ValueError:
        raise ValueError(f"--frames: expected a positive integer or 'all', got {text!r}") from None


def check_choices(models: Sequence[str], backends: Sequence[str], names: Tuple[str, str]) -> None:
    """Known models and backends; ``names`` are the caller's names of the two arguments, for
    the messages."""
    model_arg, backend_arg = names
    if not models:
        raise ValueError(f"{model_arg}: expected at least one model")
    for name in models:
        get_config(name)
    if not backends:
        raise ValueError(f"{backend_arg}: expected at least one backend")
    for backend in backends:
        if backend not in api.BACKENDS:
            raise ValueError(f"{backend_arg} must be among {', '.join(api.BACKENDS)}, got {backend!r}")


def run(args: argparse.Namespace) -> int:
    """The ``speed`` command: :func:`measure_speed` with the parsed options, the report printed
    (as text or JSON) and written as Markdown with ``--markdown``."""
    models = args.models or ["nanotrack-v2"]
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    check_choices(models, backends, ("--model", "--backend"))
    if args.weights is not None and len(models) != 1:
        raise ValueError("--weights applies to exactly one --model")
    report = measure_speed(
        models, backends=backends, threads=count_list(args.threads, "--threads"),
        frames=frame_count(args.frames), clip=args.clip, weights=args.weights,
        untrained=args.untrained, baseline=not args.no_baseline, progress=not args.json,
        loads=load_list(args.load), thread_choice=args.thread_choice,
        spinning=spinning_choice(args.spinning), camera_fps=args.camera_fps,
    )
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print(format_report(report))
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(format_markdown(report, command_line(args)))
    return 0


def measure_speed(
    models: Sequence[str] = ("nanotrack-v2",),
    *,
    backends: Sequence[str] = ("torch",),
    threads: Sequence[int] = (2,),
    frames: Optional[int] = DEFAULT_FRAMES,
    clip: Optional[Path] = None,
    weights: Optional[Path] = None,
    untrained: bool = False,
    baseline: bool = True,
    progress: bool = False,
    loads: Sequence[int] = (0,),
    thread_choice: str = "model",
    spinning: Optional[bool] = None,
    camera_fps: Optional[float] = None,
) -> SpeedReport:
    """Time ``Tracker.update`` of every model on every backend at every thread count and load.

    ``frames`` are timed after :data:`WARMUP_FRAMES` warm-up frames (``None``: the whole clip);
    ``clip`` is a video with its ``.txt`` of boxes, or ``None`` for a generated clip.
    ``weights`` applies to the one model; ``untrained`` times models whose weights are absent
    with untrained ones. ``baseline`` adds ``cv2.TrackerNano`` when NanoTrack's ONNX files are
    present; ``progress`` shows a progress bar per thread count. ``loads``: numbers of busy
    background processes (:func:`.load.busy_processes`) to time under, each in turn.
    ``thread_choice`` and ``spinning`` set the onnxruntime sessions (:class:`SessionChoice`).
    ``camera_fps`` paces the calls (:func:`time_interleaved`).
    Nothing is printed or written: the caller formats the report (:func:`format_report`,
    :func:`format_markdown`).
    """
    models, backends = list(models), list(backends)
    check_choices(models, backends, ("models", "backends"))
    if weights is not None and len(models) != 1:
        raise ValueError(f"weights: expected exactly one model, got {len(models)} models")
    if not threads:
        raise ValueError("threads: expected at least one thread count")
    threads = [positive_int(count, "threads") for count in threads]
    loads = check_loads(loads)
    sessions = SessionChoice(thread_choice, spinning)
    if frames is not None:
        frames = positive_int(frames, "frames")
    name, images, box = load_clip(clip, None if frames is None else frames + WARMUP_FRAMES + 1)
    matmul = {count: matmul_gflops(count) for count in threads}
    limit = {count: max(rates.values()) for count, rates in matmul.items()}
    jobs = [(m, b) for b in backends for m in models]
    baseline_names = [n for n in OPENCV_NANO_VERSIONS if _opencv_files(n)] if baseline else []
    jobs += [(n, "opencv") for n in baseline_names[:1]]
    # The graph counted: the job's own (weights apply to ours, not to cv2.TrackerNano's).
    graph_of = {(m, b): (m, None if b == "opencv" else weights) for m, b in jobs}
    flops = {graph: network_flops(*graph) for graph in dict.fromkeys(graph_of.values())}
    timings = []
    with tempfile.TemporaryDirectory(prefix="tracker-speed-") as scratch:
        builder = Builder(weights, untrained, Path(scratch), sessions)
        for count, load in itertools.product(threads, loads):
            set_thread_pools(count)
            with busy_processes(load):
                contenders = [_contender(model, backend, count, images[0], box, builder)
                              for model, backend in jobs]
                measured = time_interleaved(
                    [update for _, update in contenders], images[1:], WARMUP_FRAMES,
                    progress=f"timing on {count} thread(s), load {load}" if progress else None,
                    camera_fps=camera_fps,
                )
            for (model, backend), (label, _), calls in zip(jobs, contenders, measured):
                timing = replace(summarize(label, backend, count, calls.seconds,
                                           calls.cpu_seconds), load=load,
                                 session=sessions.label(model, backend, count))
                timings.append(_add_flops(timing, flops[graph_of[model, backend]], limit[count]))
    return SpeedReport(clip=name, frames=len(images) - WARMUP_FRAMES - 1, camera_fps=camera_fps,
                       machine_gflops=limit,
                       matmul_gflops=matmul, timings=_compare_with_baseline(timings))


def command_line(args: argparse.Namespace, extra: Sequence[object] = ()) -> str:
    """The ``speed`` command that repeats the run of ``args``, with ``extra`` words before
    ``--markdown``."""
    parts = ["python", "-m", "tracker.benchmark", "speed"]
    for model in args.models or []:
        parts += ["--model", model]
    parts += ["--backend", args.backend, "--threads", args.threads, "--frames", args.frames]
    for option, value in (("--clip", args.clip), ("--weights", args.weights)):
        if value is not None:
            parts += [option, value]
    if args.camera_fps is not None:
        parts += ["--camera-fps", f"{args.camera_fps:g}"]
    for option, value, default in (("--load", args.load, "0"),
                                   ("--thread-choice", args.thread_choice, "model"),
                                   ("--spinning", args.spinning, "model")):
        if value != default:
            parts += [option, value]
    flags = (("--untrained", args.untrained), ("--steps", args.steps),
             ("--no-baseline", args.no_baseline))
    parts += [flag for flag, on in flags if on]
    parts += [*extra, "--markdown", args.markdown]
    return quote_command(parts)


def _contender(
    model: str, backend: str, threads: int, first_frame: np.ndarray, box: Box, builder: "Builder"
) -> Tuple[str, Callable[[np.ndarray], object]]:
    """A label and an initialised ``update`` for one timed tracker."""
    if backend == "opencv":
        return f"cv2.TrackerNano ({model} ONNX)", _opencv_tracker(model, first_frame, box)
    label, trk = builder.build(model, backend, threads)
    trk.init(first_frame, box)
    return label, trk.update


def _add_flops(timing: Timing, flops: Optional[float], limit: float) -> Timing:
    """``timing`` with its network's GFLOPs per frame, the GFLOP/s achieved and their share of
    the machine's ``limit`` (unchanged when the FLOPs are unknown)."""
    if flops is None:
        return timing
    per_frame = flops / 1e9
    achieved = per_frame * timing.fps
    return replace(timing, gflops_per_frame=per_frame, achieved_gflops=achieved,
                   limit_ratio=achieved / limit)


@dataclass
class Builder:
    """Builds the timed trackers: with ``weights``, from the manifest, or untrained."""

    weights: Optional[Path]
    untrained: bool
    scratch: Path
    sessions: "SessionChoice" = field(default_factory=lambda: SessionChoice())

    def build(self, model: str, backend: str, threads: int) -> Tuple[str, api.Tracker]:
        """A label and a tracker of ``model`` (see :meth:`network`)."""
        label, config, runner = self.network(model, backend, threads)
        return label, api.Tracker(config, runner)

    def network(
        self, model: str, backend: str, threads: int
    ) -> Tuple[str, ModelConfig, NetworkRunner]:
        """A label, the config and a runner of ``model``, which several trackers can share."""
        from ..errors import WeightsNotFoundError

        # torch's thread count is process-wide: the timing loop sets it around each turn.
        options = self.sessions.options(model, backend, threads)
        if self.weights is not None:
            return (f"{model} [{self.weights.name}]",
                    *api.load_network(model, self.weights, backend, None, overrides={}, **options))
        try:
            return (model, *api.load_network(model, None, backend, None, overrides={}, **options))
        except WeightsNotFoundError as error:
            if not self.untrained:
                raise WeightsNotFoundError(
                    f"{error} (or pass --untrained to time untrained weights)"
                ) from None
        config = get_config(model)
        return f"{model} (untrained)", config, self._untrained(config, backend, threads)

    def _untrained(self, config: ModelConfig, backend: str, threads: int) -> NetworkRunner:
        """A runner of the network's initial weights (exported to the scratch folder for
        onnxruntime)."""
        from ..backends import onnx_backend, torch_backend

        runner = torch_backend.untrained_runner(config)
        if backend == "onnxruntime":
            from ..export import export_model

            folder = self.scratch / config.name
            if not folder.is_dir():
                export_model(config, runner.network, folder)
            runner = onnx_backend.load_exported(
                config, folder, **self.sessions.options(config.name, backend, threads)
            )
        return runner


@dataclass(frozen=True)
class SessionChoice:
    """How the timed onnxruntime sessions run: ``thread_choice`` ``"model"`` takes the model's
    :class:`~tracker.zoo.CpuPolicy` thread counts up to the timed thread count (the library's
    default), ``"fixed"`` exactly that count; ``spinning`` ``None`` is the policy's."""

    thread_choice: str = "model"
    spinning: Optional[bool] = None

    def __post_init__(self) -> None:
        if self.thread_choice not in ("model", "fixed"):
            raise ValueError(f"thread_choice: expected 'model' or 'fixed', got {self.thread_choice!r}")
        if self.spinning is not None and not isinstance(self.spinning, bool):
            raise ValueError(f"spinning: expected True, False or None, got {self.spinning!r}")

    def options(self, model: str, backend: str, threads: int) -> Dict[str, object]:
        """``load_network``'s ``threads`` and ``spinning`` for ``model`` on ``backend``."""
        if backend != "onnxruntime":
            return {"threads": None}
        policy = cpu_policy(get_config(model))
        counts = tuple(t for t in policy.thread_counts() if t <= threads)
        chosen = counts if self.thread_choice == "model" and len(counts) > 1 else threads
        spinning = policy.spinning if self.spinning is None else self.spinning
        return {"threads": chosen, "spinning": spinning}

    def label(self, model: str, backend: str, threads: int) -> str:
        """The table's ``session`` cell: thread counts and spinning ("-" for other backends)."""
        options = self.options(model, backend, threads)
        if backend != "onnxruntime":
            return "-"
        counts = options["threads"]
        chosen = (f"fastest of {','.join(map(str, counts))}" if isinstance(counts, tuple)
                  else f"{counts} fixed")
        return f"{chosen}, {'spinning' if options['spinning'] else 'sleeping'}"


def load_list(text: str) -> List[int]:
    """``--load``: comma-separated numbers of busy processes, 0 or more each."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(part.isdigit() for part in parts):
        raise ValueError(f"--load: expected comma-separated whole numbers such as 0,1,2, got {text!r}")
    return [int(part) for part in parts]


def check_loads(loads: Sequence[int]) -> List[int]:
    """``loads`` as a list of whole numbers >= 0 (``ValueError`` naming ``loads`` otherwise)."""
    loads = list(loads)
    if not loads or any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in loads):
        raise ValueError(f"loads: expected one or more whole numbers >= 0, got {loads!r}")
    return loads


def spinning_choice(text: str) -> Optional[bool]:
    """``--spinning``: ``model`` -> ``None`` (the policy's), ``on`` / ``off``."""
    return {"model": None, "on": True, "off": False}[text]


@dataclass
class Calls:
    """What :func:`time_interleaved` measured of one ``update``: wall seconds per timed call,
    and this process's CPU seconds (all threads) over the turns those calls were made in."""

    seconds: List[float] = field(default_factory=list)
    cpu_seconds: float = 0.0


def time_interleaved(
    updates: Sequence[Callable[[np.ndarray], object]],
    frames: Sequence[np.ndarray],
    warmup: int,
    rounds: int = ROUNDS,
    progress: Optional[str] = None,
    camera_fps: Optional[float] = None,
) -> List[Calls]:
    """Time each ``update`` on ``frames[warmup:]`` after ``warmup`` untimed calls.

    Every tracker sees every frame in order, but the timed frames are cut into ``rounds``
    chunks taken in turn by each tracker, so a slow drift of the machine (clock, a neighbour's
    load) spreads over all of them instead of favouring the ones timed first. With
    ``camera_fps`` a timed call starts at most every ``1 / camera_fps`` seconds (the wait is
    slept, not timed), so the CPU seconds include what is burnt between frames.
    """
    for update in updates:
        for frame in frames[:warmup]:
            update(frame)
    timed = frames[warmup:]
    period = 0.0 if camera_fps is None else 1.0 / camera_fps
    bounds = np.linspace(0, len(timed), min(rounds, len(timed)) + 1).astype(int)
    measured = [Calls() for _ in updates]
    steps = tqdm(total=len(updates) * len(timed), desc=progress, unit="frame",
                 disable=progress is None)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        for update, calls in zip(updates, measured):
            cpu_start = time.process_time()
            for frame in timed[start:stop]:
                begin = time.perf_counter()
                update(frame)
                elapsed = time.perf_counter() - begin
                calls.seconds.append(elapsed)
                if elapsed < period:
                    time.sleep(period - elapsed)
            calls.cpu_seconds += time.process_time() - cpu_start
            steps.update(stop - start)
    steps.close()
    return measured


def summarize(label: str, backend: str, threads: int, seconds: Sequence[float],
              cpu_seconds: Optional[float] = None) -> Timing:
    """The timing of calls that took ``seconds`` each (and ``cpu_seconds`` in all)."""
    ms = np.asarray(seconds) * 1000.0
    return Timing(
        tracker=label, backend=backend, threads=threads, frames=len(ms),
        median_ms=float(np.median(ms)), p95_ms=float(np.percentile(ms, 95)),
        fps=float(len(ms) / (ms.sum() / 1000.0)),
        cpu_ms=None if cpu_seconds is None else 1000.0 * cpu_seconds / len(ms),
    )


def _compare_with_baseline(timings: Sequence[Timing]) -> List[Timing]:
    """``timings`` with their FPS over the baseline's at the same thread count, where there is
    one."""
    baselines = {(t.threads, t.load): t.fps for t in timings if t.backend == "opencv"}
    return [replace(t, vs_baseline=t.fps / baselines[t.threads, t.load])
            if (t.threads, t.load) in baselines else t for t in timings]


def _cell(value: Optional[float], spec: str, suffix: str = "") -> str:
    return "-" if value is None else format(value, spec) + suffix


#: Columns of the text and the Markdown table; the last one only in a run with the baseline.
TABLE_HEADER = ("tracker", "backend", "threads", "load", "session", "median ms", "p95 ms", "FPS",
                "CPU ms", "GFLOP/frame", "GFLOP/s", "of limit", "vs cv2.TrackerNano")
BASELINE_NOTE = ("'vs cv2.TrackerNano' = FPS / cv2.TrackerNano's FPS at the same thread count "
                 "and load")
LOAD_NOTE = ("load = busy background processes while timing; session = onnxruntime's intra-op "
             "threads and whether they spin")


def _cpu_note(report: SpeedReport) -> str:
    """What the 'CPU ms' column counts in ``report``'s run."""
    counted = ("the calls back to back" if report.camera_fps is None else
               f"the calls at a camera's {report.camera_fps:g} frames/s, the waits between "
               "frames included")
    return f"CPU ms = this process's CPU time per frame, all threads, over {counted}"


def _has_baseline(report: SpeedReport) -> bool:
    return any(t.vs_baseline is not None for t in report.timings)


def table_header(report: SpeedReport) -> Tuple[str, ...]:
    """The columns of ``report``'s table: :data:`TABLE_HEADER`, less the baseline ratio in a
    run without the baseline."""
    return TABLE_HEADER if _has_baseline(report) else TABLE_HEADER[:-1]


def table_rows(report: SpeedReport) -> List[List[str]]:
    """One row of :func:`table_header` cells per timing."""
    columns = len(table_header(report))
    return [
        [t.tracker, t.backend, str(t.threads), str(t.load), t.session, f"{t.median_ms:.2f}",
         f"{t.p95_ms:.2f}",
         f"{t.fps:.1f}", _cell(t.cpu_ms, ".2f"), _cell(t.gflops_per_frame, ".3f"), _cell(t.achieved_gflops, ".1f"),
         _cell(None if t.limit_ratio is None else 100 * t.limit_ratio, ".1f", "%"),
         _cell(t.vs_baseline, ".2f", "x")][:columns]
        for t in report.timings
    ]


def _baseline_note(report: SpeedReport) -> str:
    return f"; {BASELINE_NOTE}" if _has_baseline(report) else ""


def _limits(report: SpeedReport) -> str:
    return "; ".join(
        f"{report.machine_gflops[t]:.0f} GFLOP/s on {t} thread(s) ({_per_library(r)})"
        for t, r in report.matmul_gflops.items()
    )


def format_report(report: SpeedReport) -> str:
    """A plain-text table of the report, each column as wide as its widest cell."""
    return "\n".join([
        f"clip: {report.clip}, {report.frames} timed frames after {WARMUP_FRAMES} warm-up frames"
        + ("" if report.camera_fps is None else f", at most {report.camera_fps:g} calls a second"),
        f"machine fp32 matmul limit: {_limits(report)}",
        "",
        markdown.text_table(table_header(report), table_rows(report), left_columns=2),
        "",
        "FPS = timed frames / their total time; trackers timed in turns over "
        f"{ROUNDS} rounds; 'of limit' = FLOPs per frame x FPS / the matmul limit "
        f"({LIMIT_NOTE}); {_cpu_note(report)}; {LOAD_NOTE}{_baseline_note(report)}.",
    ])


def _per_library(rates: Dict[str, float]) -> str:
    fastest_first = sorted(rates.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{library} {rate:.0f}" for library, rate in fastest_first)


def format_markdown(report: SpeedReport, command: str) -> str:
    """The report as a Markdown table (the text table's columns), with the command and
    machine under it."""
    return "\n".join([
        *markdown.table(table_header(report), table_rows(report)),
        "",
        f"Generated by `{command}` on {markdown.machine()}: `update` (crop, network, decoding) "
        f"over {report.frames} frames of {Path(report.clip).name} "
        f"after {WARMUP_FRAMES} warm-up frames, the trackers timed in turns over {ROUNDS} rounds; "
        f"FPS = frames / total time; fp32 matmul limit {_limits(report)}; 'of limit' = FLOPs per "
        f"frame x FPS / that limit ({LIMIT_NOTE}); {_cpu_note(report)}; {LOAD_NOTE}"
        f"{_baseline_note(report)}.",
        "",
    ])


def matmul_gflops(threads: int, size: int = MATMUL_SIZE, repeats: int = 10) -> Dict[str, float]:
    """Best-of-``repeats`` fp32 GFLOP/s of a ``size`` x ``size`` matrix product, per library.

    The machine's limit is the fastest of them: libraries differ a lot on one CPU (MKL's
    generic path on AMD processors reaches half of what onnxruntime's MLAS does). numpy is
    left out because its BLAS thread count cannot be set after import.
    """
    set_thread_pools(threads)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    products: Dict[str, Callable[[], object]] = {"onnxruntime": _onnxruntime_matmul(a, b, threads)}
    try:
        import torch
    except ImportError:
        pass
    else:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        products["torch"] = lambda: ta @ tb
    rates = {}
    for library, product in products.items():
        for _ in range(3):
            product()
        best = min(_seconds(product) for _ in range(repeats))
        rates[library] = 2.0 * size ** 3 / best / 1e9
    return rates


def _onnxruntime_matmul(a: np.ndarray, b: np.ndarray, threads: int) -> Callable[[], object]:
    from onnx import TensorProto, helper

    from ..backends.onnx_backend import session

    shape = list(a.shape)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    matmul = session(model.SerializeToString(), threads)
    return lambda: matmul.run(None, {"a": a, "b": b})


def _seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _opencv_files(model: str) -> Optional[Tuple[Path, Path]]:
    from ..weights import find_weights

    backbone, head = find_weights(model, "onnx_backbone"), find_weights(model, "onnx_head")
    return (backbone, head) if backbone and head else None


def _opencv_tracker(model: str, first_frame: np.ndarray, box: Box) -> Callable[[np.ndarray], object]:
    backbone, head = _opencv_files(model)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    params = cv2.TrackerNano_Params()
    params.backbone = str(backbone)
    params.neckhead = str(head)
    nano = cv2.TrackerNano_create(params)
    nano.init(first_frame, opencv_rect(box))
    return nano.update


def opencv_rect(box: Box) -> Tuple[int, int, int, int]:
    """``box`` as the integer ``Rect`` ``cv2.TrackerNano`` takes, every number rounded half away
    from zero as OpenCV's own protocol does (NanoTrack fixtures README, section 10); Python's
    ``round`` would round halves to even."""
    x, y, w, h = (int(math.copysign(math.floor(abs(v) + 0.5), v)) for v in box)
    return x, y, w, h


def load_clip(path: Optional[Path], count: Optional[int]) -> Tuple[str, List[np.ndarray], Box]:
    """``count`` frames (``None``: all) of a clip in memory, and its first box (0-based corner
    convention). Without a clip, a generated one (``DEFAULT_FRAMES`` frames for ``None``)."""
    if path is None:
        count = count or DEFAULT_FRAMES + WARMUP_FRAMES + 1
        frames, box = generated_clip(count)
        return f"generated ({count} frames, 640x360)", frames, box
    frames = list(itertools.islice(clips.frames(path, "--clip"), count))
    box = clips.first_box(path, "--clip")
    if len(frames) < WARMUP_FRAMES + 2:
        raise ValueError(f"--clip: could not decode enough frames from {path}")
    return str(path), frames, box


def generated_clip(count: int, width: int = 640, height: int = 360) -> Tuple[List[np.ndarray], Box]:
    """A textured square drifting over a noisy background (used when no clip is present)."""
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (7, 7), 0)
    target = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    frames = []
    for index in range(count):
        frame = background.copy()
        x = int(100 + 200 * (0.5 + 0.5 * np.sin(index / 40)))
        y = int(120 + 80 * (0.5 + 0.5 * np.cos(index / 55)))
        frame[y:y + 40, x:x + 60] = target
        frames.append(frame)
    x0 = int(100 + 200 * 0.5)
    y0 = int(120 + 80 * 1.0)
    return frames, (float(x0), float(y0), 60.0, 40.0)
