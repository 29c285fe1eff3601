"""``python -m tracker.benchmark {accuracy,merge,speed,int8,bias} ...``"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ..errors import TrackerError
from . import accuracy, bias, int8, multi_speed, speed

_EXAMPLES = """examples:
  python -m tracker.benchmark accuracy --dataset otb --root ../shared/data/otb --model nanotrack-v2
  python -m tracker.benchmark speed --model nanotrack-v2 --model siamrpnpp-alex --threads 1,2
  python -m tracker.benchmark speed --model nanotrack-v2 --targets 1,2,4,8,16 --plot multi.png
  python -m tracker.benchmark int8 --model nanotrack-v2 --export exports/nanotrack-v2 --calibration clip.mp4
  python -m tracker.benchmark bias --dataset otb --root ../shared/data/otb --model nanotrack-v2
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m tracker.benchmark",
        description=__doc__,
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    accuracy.register(commands)
    multi_speed.register(speed.register(commands))
    int8.register(commands)
    bias.register(commands)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (TrackerError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
