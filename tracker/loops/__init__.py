"""One tracking loop per head family (the table is :data:`tracker.config.FAMILIES`)."""

from .base import NetworkRunner, TrackingLoop

__all__ = ["NetworkRunner", "TrackingLoop"]
