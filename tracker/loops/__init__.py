"""One tracking loop per head family (the table is :data:`tracker.config.FAMILIES`), and the
long-term wrapper that any of them can run in."""

from .base import NetworkRunner, TrackingLoop
from .long_term import LongTermLoop

__all__ = ["LongTermLoop", "NetworkRunner", "TrackingLoop"]
