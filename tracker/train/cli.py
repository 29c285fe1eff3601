"""``python -m tracker.train``: the command-line form of :func:`tracker.train.engine.train`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..cli_args import positive_int
from ..errors import TrackerError
from ..zoo import list_models
from .engine import TrainingInterrupted, train

ERROR_EXIT = 2
INTERRUPTED_EXIT = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tracker.train",
        description="Train or fine-tune a tracker model. Defaults are the reference "
                    "implementation's recipe for the model's family; --init-weights switches to "
                    "the fine-tuning recipe (BatchNorm statistics and backbone kept, the "
                    "reference's final learning rate). Under torchrun every process trains on "
                    "its own pairs (see README: batch size and learning rate).",
    )
    parser.add_argument("--model", required=True, choices=list_models(), metavar="NAME",
                        help="model to train: " + ", ".join(list_models()))
    parser.add_argument("--data", action="append", required=True, metavar="KIND[@W]:PATH",
                        help="training data, repeatable: got10k, lasot, otb or video (a video "
                             "with a .txt of 1-based x,y,w,h lines beside it); @W weights a "
                             "dataset against the others (default 1)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="run folder: checkpoint.pth, log.jsonl, curves.png, model.pth")
    parser.add_argument("--epochs", type=positive_int, help="epochs (recipe default otherwise)")
    parser.add_argument("--pairs-per-epoch", type=positive_int, help="pairs per epoch")
    parser.add_argument("--batch-size", type=positive_int, help="pairs per step and process")
    parser.add_argument("--init-weights", type=Path, metavar="PATH",
                        help="a trained checkpoint to fine-tune (published or model.pth)")
    parser.add_argument("--backbone-weights", type=Path, metavar="PATH",
                        help="an ImageNet backbone checkpoint to start from (pysot's "
                             "alexnet-bn.pth / resnet50.model, NanoTrack's "
                             "mobilenetv3_small_1.0.pth layouts)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--workers", type=int, default=1,
                        help="data-loader processes per training process (0: load in the "
                             "training process; default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of pairs, crops and init")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace another run's files in --out")
    parser.add_argument("--val", action="append", default=[], metavar="KIND:PATH",
                        help="benchmark folder (otb, got10k, lasot) scored after every epoch; "
                             "model.pth is then the epoch with the best success AUC")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        dest="overrides", help="replace one recipe field, e.g. "
                        "optim.batch_size=16 or schedule.lr_start=0.001 (repeatable)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="a whole recipe as JSON (run.json's \"recipe\" of a run is one)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _overrides(pairs: Sequence[str]) -> Dict[str, str]:
    overrides: Dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects SECTION.FIELD=VALUE, got {pair!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command. Exit status: 0, 2 after an error (one line), 130 after Ctrl-C (the run
    can be resumed)."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        result = train(
            args.model, args.data, args.out, epochs=args.epochs,
            pairs_per_epoch=args.pairs_per_epoch, batch_size=args.batch_size,
            init_weights=args.init_weights, backbone_weights=args.backbone_weights,
            device=args.device, workers=args.workers, seed=args.seed, resume=args.resume,
            overwrite=args.overwrite, val=args.val, overrides=_overrides(args.overrides),
            config=args.config, progress=not args.quiet,
        )
    except TrainingInterrupted as stop:
        print(f"tracker.train: {stop}", file=sys.stderr)
        return INTERRUPTED_EXIT
    except KeyboardInterrupt:
        print("tracker.train: interrupted before training started", file=sys.stderr)
        return INTERRUPTED_EXIT
    except (TrackerError, ValueError, OSError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return ERROR_EXIT
    print(result.model_path)
    return 0
