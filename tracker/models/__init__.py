"""Networks (torch): registries of backbones, necks and heads, and their assembly."""

from .catalog import BACKBONES, HEADS, NECKS
from .checkpoint import read_checkpoint
from .network import SiameseNetwork, build_model

__all__ = ["BACKBONES", "HEADS", "NECKS", "SiameseNetwork", "build_model", "read_checkpoint"]
