"""``python tools/train_evidence.py``: the training evidence in README, measured on this machine.

A development tool, outside the installed package: it knows the shared data folder
(``$TRACKER_SHARED``, else ``../shared``). It splits the shared sequences into a training
part (the airplane clip and five OTB-layout sequences) and a held-back part (the other five),
then, each step through the library's own functions (``tracker.train.engine.train``,
``tracker.benchmark.accuracy.evaluate``):

1. throughput per family: training pairs/s of the trainer itself, forward + backward FLOPs
   per pair (torch's FlopCounterMode) as a share of this machine's measured float32 matrix-
   multiply rate, and the data loader alone at the trainer's default worker count;
2. nanotrack-v2 fine-tuned from its published weights for about ``--finetune-minutes``:
   success AUC on the held-back sequences before and after;
3. siamfc-alexnet trained from scratch for about ``--scratch-minutes``: success AUC of the
   untrained (initialised) network and of the trained one.

The pair counts that fill the minutes come from the throughput measured in step 1. Prints
Markdown and writes it to ``--markdown``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from tracker.benchmark.accuracy import evaluate
from tracker.cli_args import quote_command, set_thread_pools
from tracker.models.network import build_model
from tracker.train.checkpoints import save_model_weights
from tracker.train.data.loader import PairDataset
from tracker.train.data.pairs import PairSampler
from tracker.train.data.sources import load_sequences, parse_data_spec
from tracker.train.engine import initialise, set_trainable, train
from tracker.train.objectives import build_objective
from tracker.train.recipes import default_recipe
from tracker.weights import cache_dir, find_weights
from tracker.zoo import get_config

TRAIN_OTB = ("Biker", "Couple", "Crossing", "Girl", "Skiing")
HELD_BACK_OTB = ("Football1", "MotorRolling", "dtb70_Surfing06", "uav_wakeboard7", "vot_bag")
CLIP = "airplane-1.mp4"
FAMILIES = ("siamfc-alexnet", "siamrpnpp-alex", "nanotrack-v2")
DEFAULT_WORKERS = 1
#: pysot's AlexNet batch (128) would take minutes per step here; throughput is per pair
THROUGHPUT_BATCH = 16
THREADS = 2


def shared_dir() -> Path:
    default = Path(__file__).resolve().parents[1].parent / "shared"
    return Path(os.environ.get("TRACKER_SHARED", default))


def split_folders(shared: Path, work: Path) -> Tuple[List[str], Path]:
    """``--data`` specs of the training part and the held-back OTB-layout folder (links)."""
    otb = shared / "data" / "otb"
    folders = {"train": TRAIN_OTB, "held-back": HELD_BACK_OTB}
    for part, names in folders.items():
        target = work / part
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            link = target / name
            if not link.exists():
                link.symlink_to((otb / name).resolve(), target_is_directory=True)
    return [f"otb:{work / 'train'}", f"video:{shared / 'data' / 'clips' / CLIP}"], \
        work / "held-back"


def matmul_rate(seconds: float = 2.0, sizes: Sequence[int] = (512, 1024, 2048)) -> float:
    """This machine's float32 FLOP limit as torch reaches it: the best rate of square matrix
    products of a few sizes, each repeated for ``seconds``."""
    best = 0.0
    for size in sizes:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            t = time.perf_counter()
            a @ b
            best = max(best, 2 * size ** 3 / (time.perf_counter() - t))
    return best


def step_flops(model: str, batch: int = 4) -> float:
    """Forward + backward FLOPs of one training pair (2 per multiply-add) in the first epoch of
    the default recipe, where pysot and NanoTrack keep the backbone frozen: the backward pass
    then stops at the neck, as it does in the timed run."""
    recipe = default_recipe(model)
    network = build_model(model)
    set_trainable(network, recipe, 0)
    z = torch.rand(batch, 3, recipe.augment.exemplar_size, recipe.augment.exemplar_size) * 255
    x = torch.rand(batch, 3, recipe.augment.search_size, recipe.augment.search_size) * 255
    with FlopCounterMode(display=False) as counter:
        outputs = network(z, x)
        sum(v.float().mean() for v in outputs.values()).backward()
    return counter.get_total_flops() / batch


def loader_rate(model: str, data: Sequence[str], pairs: int, workers: int, batch: int) -> float:
    """Pairs/s of the trainer's data pipeline alone (reading, cropping, targets, batching)."""
    config, recipe = get_config(model), default_recipe(model)
    loads = [load_sequences(parse_data_spec(d), cache_dir() / "train-frames") for d in data]
    sampler = PairSampler([(l.sequences, l.spec.weight) for l in loads], recipe.pairs)
    objective = build_objective(config, recipe.targets, recipe.augment.search_size, 1.0, 1.0)
    dataset = PairDataset(sampler, recipe.augment, objective, config.network.input_order,
                          0, 0, range(pairs))
    loader = DataLoader(dataset, batch_size=batch, num_workers=workers)
    started = time.perf_counter()
    for _ in loader:
        pass
    return pairs / (time.perf_counter() - started)


def throughput(data: Sequence[str], work: Path, seconds: float) -> Tuple[List[Dict], float]:
    """Per family: the trainer's pairs/s over about ``seconds``, FLOPs, the loader's rate."""
    peak = matmul_rate()
    rows = []
    for model in FAMILIES:
        batch = min(default_recipe(model).optim.batch_size, THROUGHPUT_BATCH)
        options = {"epochs": 1, "batch_size": batch, "workers": DEFAULT_WORKERS,
                   "overwrite": True, "progress": False}
        probe = train(model, data, work / "throughput" / model, pairs_per_epoch=batch, **options)
        guess = probe.epochs[0].pairs_per_s
        pairs = max(2 * batch, int(guess * seconds) // batch * batch)
        timed = train(model, data, work / "throughput" / model, pairs_per_epoch=pairs, **options)
        rate = timed.epochs[0].pairs_per_s
        flops = step_flops(model)
        loader = loader_rate(model, data, max(pairs, 4 * batch), DEFAULT_WORKERS, batch)
        rows.append({"model": model, "batch": batch, "pairs": pairs, "rate": rate,
                     "flops": flops, "share": rate * flops / peak, "loader": loader})
        print(f"{model}: {rate:.1f} pairs/s, {flops / 1e9:.2f} GFLOP/pair, "
              f"{rate * flops / peak:.0%} of {peak / 1e9:.0f} GFLOP/s, loader {loader:.1f} "
              "pairs/s", file=sys.stderr)
    return rows, peak


def auc(model: str, held_back: Path, weights: Optional[Path], results: Path) -> float:
    report = evaluate("otb", held_back, [model], weights=weights, results=results / "results",
                      reports=results / "reports", threads=THREADS, progress=False)
    return float(report.models[0].success_auc)


def timed_run(model: str, data: Sequence[str], out: Path, minutes: float, rate: float,
              epochs: int, **options) -> Tuple[Path, float, int]:
    """Train for about ``minutes`` (pairs from the measured ``rate``): weights, seconds, pairs."""
    batch = default_recipe(model, finetune="init_weights" in options).optim.batch_size
    per_epoch = max(batch, int(rate * minutes * 60 / epochs) // batch * batch)
    started = time.perf_counter()
    result = train(model, data, out, epochs=epochs, pairs_per_epoch=per_epoch,
                   workers=DEFAULT_WORKERS, overwrite=True, **options)
    return result.model_path, time.perf_counter() - started, per_epoch * epochs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python tools/train_evidence.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("runs/train-evidence"),
                        help="folder for the runs, the split and the benchmark results")
    parser.add_argument("--markdown", type=Path, default=Path("reports/training.md"))
    parser.add_argument("--finetune-minutes", type=float, default=10.0)
    parser.add_argument("--scratch-minutes", type=float, default=20.0)
    parser.add_argument("--throughput-seconds", type=float, default=30.0)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    set_thread_pools(THREADS)
    shared = shared_dir()
    data, held_back = split_folders(shared, args.work / "split")
    rows, peak = throughput(data, args.work, args.throughput_seconds)
    rates = {row["model"]: row["rate"] for row in rows}

    published = find_weights("nanotrack-v2")
    if published is None:
        print("error: nanotrack-v2's published weights are not found (set TRACKER_WEIGHTS)",
              file=sys.stderr)
        return 2
    before = auc("nanotrack-v2", held_back, None, args.work / "eval-published")
    tuned, tuned_s, tuned_pairs = timed_run(
        "nanotrack-v2", data, args.work / "finetune", args.finetune_minutes,
        rates["nanotrack-v2"], 5, init_weights=published)
    after = auc("nanotrack-v2", held_back, tuned, args.work / "eval-finetuned")

    initial = args.work / "siamfc-initial.pth"
    network = build_model("siamfc-alexnet")
    initialise(network, default_recipe("siamfc-alexnet"), seed=0)
    save_model_weights(initial, network)
    untrained = auc("siamfc-alexnet", held_back, initial, args.work / "eval-untrained")
    trained_path, scratch_s, scratch_pairs = timed_run(
        "siamfc-alexnet", data, args.work / "scratch", args.scratch_minutes,
        rates["siamfc-alexnet"], 10)
    trained = auc("siamfc-alexnet", held_back, trained_path, args.work / "eval-scratch")

    lines = [
        f"Training part: {', '.join(TRAIN_OTB)} and the airplane clip; held back: "
        f"{', '.join(HELD_BACK_OTB)} (success AUC, OTB protocol). {THREADS} threads, "
        f"data-loader workers: {DEFAULT_WORKERS}.",
        "",
        "| run | pairs | minutes | success AUC before | after |",
        "| --- | --- | --- | --- | --- |",
        f"| nanotrack-v2 fine-tuned from the published weights | {tuned_pairs} | "
        f"{tuned_s / 60:.1f} | {before:.3f} (published) | {after:.3f} |",
        f"| siamfc-alexnet from scratch | {scratch_pairs} | {scratch_s / 60:.1f} | "
        f"{untrained:.3f} (initialised) | {trained:.3f} ({trained / max(untrained, 1e-9):.1f}x) |",
        "",
        f"Training throughput (float32 matrix product here: {peak / 1e9:.0f} GFLOP/s):",
        "",
        "| model | batch | training pairs/s | GFLOP per pair (fwd + bwd) | share of the "
        "matmul rate | data loader alone, pairs/s | loader / training |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['batch']} | {row['rate']:.1f} | {row['flops'] / 1e9:.2f} | "
            f"{row['share']:.0%} | {row['loader']:.1f} | {row['loader'] / row['rate']:.1f}x |")
    lines += ["", "Measured by `" + quote_command(["python", "tools/train_evidence.py",
                                                    *(argv if argv is not None else sys.argv[1:])])
              + "`."]
    text = "\n".join(lines) + "\n"
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
