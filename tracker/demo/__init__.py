"""``python -m tracker.demo``: follow an object in a video file, a webcam or a folder of images.

Run ``python -m tracker.demo --help`` for the options. The modules: :mod:`.sources` (frames),
:mod:`.overlay` (drawing), :mod:`.display` (window and keys), :mod:`.session` (the tracking
loop, outputs and summary), :mod:`.cli` (arguments and errors).
"""

from .cli import main

__all__ = ["main"]
