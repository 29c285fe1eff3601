"""Listing the frames of an image folder in playback order."""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Union

#: File name endings read as frames (compared case-insensitively).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def list_images(folder: Union[str, Path]) -> List[Path]:
    """The image files directly inside ``folder``, by name with numbers compared as numbers
    (``frame2`` before ``frame10``), so unpadded frame numbers play in order too."""
    return sorted(
        (p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
        key=_natural_key,
    )


def _natural_key(path: Path) -> List[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]
