"""One tracking loop per head family."""

from typing import Dict, Type

from .base import NetworkRunner, TrackingLoop
from .proposals import NanoTrackLoop, SiamRPNLoop
from .siamfc import SiamFCLoop

LOOPS: Dict[str, Type[TrackingLoop]] = {
    "siamfc": SiamFCLoop,
    "siamrpn": SiamRPNLoop,
    "nanotrack": NanoTrackLoop,
}

__all__ = ["LOOPS", "NetworkRunner", "TrackingLoop"]
