"""Exceptions of the training tool."""

from __future__ import annotations

from ..errors import TrackerError


class TrainingError(TrackerError):
    """A training run that cannot start or continue as asked: its output folder holds another
    run, or a resume does not match the run it continues. The message is one line naming the
    folder and the fix."""
