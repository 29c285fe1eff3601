"""tracker: real-time Siamese visual object tracking (SiamFC, SiamRPN, SiamRPN++, NanoTrack).

Importing this package imports neither torch nor onnxruntime; backends load on first use.
"""

from .api import Tracker, TrackResult, build_tracker, describe
from .errors import (
    CheckpointError,
    NotInitializedError,
    TrackerError,
    UnknownNameError,
    UnknownTargetError,
    WeightsNotFoundError,
)
from .multi import MultiTracker, build_multi_tracker
from .zoo import get_config, list_models

__version__ = "0.1.0"

__all__ = [
    "Tracker",
    "TrackResult",
    "MultiTracker",
    "build_tracker",
    "build_multi_tracker",
    "describe",
    "CheckpointError",
    "NotInitializedError",
    "TrackerError",
    "UnknownNameError",
    "UnknownTargetError",
    "WeightsNotFoundError",
    "get_config",
    "list_models",
]
