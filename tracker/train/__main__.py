"""Entry point of ``python -m tracker.train`` (and of ``torchrun -m tracker.train``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
