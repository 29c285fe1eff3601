"""Exceptions raised by the tracker library.

Every error a user can trigger with bad input is one of these or a ``ValueError`` /
``FileNotFoundError`` whose message names the offending argument.
"""

from __future__ import annotations


class TrackerError(Exception):
    """Base class of the library's own errors."""


class UnknownNameError(TrackerError, KeyError):
    """A model, backbone, neck or head name that no registry knows."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


class CheckpointError(TrackerError):
    """A checkpoint file that cannot be read, or that does not fit the model."""


class WeightsNotFoundError(TrackerError, FileNotFoundError):
    """No usable weights file for a model: not on disk and not downloadable."""


class NotInitializedError(TrackerError, RuntimeError):
    """``update`` was called before ``init``."""


class UnknownTargetError(TrackerError, KeyError):
    """A target id that a :class:`~tracker.MultiTracker` is not tracking."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
