"""``speed --steps``: where a frame's time goes, step by step.

A tracking step is four stages, timed separately on every frame of the clip:

* ``crop``: the search crops cut around the current state (``TrackingLoop.search``);
* ``blob``: the crops made one float32 network input (``to_blob``);
* ``network``: the search branch (``NetworkRunner.track``);
* ``decode``: the head outputs turned into the new state (``TrackingLoop.locate``).

The medians of each stage (and of their sum per frame) say what a change should target; run
with ``--load`` they say which stage other processes slow down.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from ..api import new_loop
from ..cli_args import positive_int, set_thread_pools
from ..config import ModelConfig
from ..geometry import Box, box_to_center
from ..loops import NetworkRunner
from ..loops.base import to_blob
from . import markdown, speed
from .load import busy_processes

STAGES = ("crop", "blob", "network", "decode")


@dataclass(frozen=True)
class StepCosts:
    """Median milliseconds per stage (:data:`STAGES`) and of a whole step, over ``frames``."""

    tracker: str
    backend: str
    threads: int
    session: str
    load: int
    frames: int
    stage_ms: Dict[str, float]
    step_ms: float


def time_steps(
    config: ModelConfig, runner: NetworkRunner, frames: Sequence[np.ndarray], box: Box,
    warmup: int,
) -> Dict[str, List[float]]:
    """Seconds of each stage on ``frames[1 + warmup:]``, tracking ``box`` from ``frames[0]``.

    The warm-up frames are tracked but not timed; every stage of a frame is timed once.
    """
    loop = new_loop(config, runner)
    loop.start(frames[0], box_to_center(box))
    seconds: Dict[str, List[float]] = {stage: [] for stage in STAGES}
    for index, frame in enumerate(frames[1:]):
        begin = time.perf_counter()
        crops = loop.search(frame)
        cropped = time.perf_counter()
        blob = to_blob(*crops, input_order=loop.input_order)
        blobbed = time.perf_counter()
        outputs = runner.track(loop.kernel, blob)
        ran = time.perf_counter()
        loop.locate(frame, outputs)
        done = time.perf_counter()
        if index >= warmup:
            for stage, start, stop in zip(STAGES, (begin, cropped, blobbed, ran),
                                          (cropped, blobbed, ran, done)):
                seconds[stage].append(stop - start)
    return seconds


def summarize_steps(
    label: str, backend: str, threads: int, session: str, load: int,
    seconds: Dict[str, List[float]],
) -> StepCosts:
    """The medians of :func:`time_steps`' ``seconds``, in milliseconds."""
    per_stage = {stage: np.asarray(seconds[stage]) * 1000.0 for stage in STAGES}
    steps = sum(per_stage.values())
    return StepCosts(
        tracker=label, backend=backend, threads=threads, session=session, load=load,
        frames=len(steps), stage_ms={s: float(np.median(v)) for s, v in per_stage.items()},
        step_ms=float(np.median(steps)),
    )


TABLE_HEADER = ("tracker", "backend", "threads", "load", "session", *(f"{s} ms" for s in STAGES),
                "step ms")


def table_rows(costs: Sequence[StepCosts]) -> List[List[str]]:
    """One row per :class:`StepCosts`, in :data:`TABLE_HEADER`'s order."""
    return [[c.tracker, c.backend, str(c.threads), str(c.load), c.session,
             *(f"{c.stage_ms[s]:.3f}" for s in STAGES), f"{c.step_ms:.3f}"] for c in costs]


def measure_step_costs(
    models: Sequence[str] = ("nanotrack-v2",),
    *,
    backends: Sequence[str] = ("onnxruntime",),
    threads: Sequence[int] = (2,),
    loads: Sequence[int] = (0,),
    frames: Optional[int] = speed.DEFAULT_FRAMES,
    clip: Optional[Path] = None,
    weights: Optional[Path] = None,
    untrained: bool = False,
    sessions: speed.SessionChoice = speed.SessionChoice(),
    progress: bool = False,
) -> List[StepCosts]:
    """:func:`time_steps` of every model on every backend, at every thread count and load
    (busy background processes, :func:`.load.busy_processes`); arguments as for
    :func:`.speed.measure_speed`."""
    models, backends = list(models), list(backends)
    speed.check_choices(models, backends, ("models", "backends"))
    threads = [positive_int(count, "threads") for count in threads]
    loads = speed.check_loads(loads)
    if frames is not None:
        frames = positive_int(frames, "frames")
    _, images, box = speed.load_clip(
        clip, None if frames is None else frames + speed.WARMUP_FRAMES + 1
    )
    jobs = list(itertools.product(threads, loads, backends, models))
    costs = []
    with tempfile.TemporaryDirectory(prefix="tracker-steps-") as scratch:
        builder = speed.Builder(weights, untrained, Path(scratch), sessions)
        for count, load, backend, model in tqdm(jobs, desc="timing steps", unit="run",
                                                disable=not progress):
            set_thread_pools(count)
            with busy_processes(load):
                label, config, runner = builder.network(model, backend, count)
                seconds = time_steps(config, runner, images, box, speed.WARMUP_FRAMES)
            costs.append(summarize_steps(label, backend, count, sessions.label(model, backend, count),
                                         load, seconds))
    return costs


def format_steps(costs: Sequence[StepCosts]) -> str:
    """A plain-text table of ``costs``."""
    return "\n".join([
        markdown.text_table(TABLE_HEADER, table_rows(costs), left_columns=2),
        "",
        f"median ms per stage over each run's frames after {speed.WARMUP_FRAMES} warm-up frames; "
        f"step = the median of the stages' sum per frame; {speed.LOAD_NOTE}.",
    ])


def format_steps_markdown(costs: Sequence[StepCosts], command: str) -> str:
    """``costs`` as a Markdown table with the command and machine under it."""
    return "\n".join([
        *markdown.table(TABLE_HEADER, table_rows(costs)),
        "",
        f"Generated by `{command}` on {markdown.machine()}: median ms per stage after "
        f"{speed.WARMUP_FRAMES} warm-up frames; step = the median of the stages' sum per frame; "
        f"{speed.LOAD_NOTE}.",
        "",
    ])


def run(args: argparse.Namespace) -> int:
    """``speed --steps``: :func:`measure_step_costs` with the parsed options, printed as text or
    JSON and written as Markdown with ``--markdown``."""
    models = args.models or ["nanotrack-v2"]
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    speed.check_choices(models, backends, ("--model", "--backend"))
    if args.weights is not None and len(models) != 1:
        raise ValueError("--weights applies to exactly one --model")
    costs = measure_step_costs(
        models, backends=backends, threads=speed.count_list(args.threads, "--threads"),
        loads=speed.load_list(args.load), frames=speed.frame_count(args.frames), clip=args.clip,
        weights=args.weights, untrained=args.untrained,
        sessions=speed.SessionChoice(args.thread_choice, speed.spinning_choice(args.spinning)),
        progress=not args.json,
    )
    if args.json:
        print(json.dumps([asdict(c) for c in costs], indent=2))
    else:
        print(format_steps(costs))
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(format_steps_markdown(costs, speed.command_line(args)))
    return 0
