"""Where the demo's frames come from: a video (anything OpenCV reads), a webcam, an image folder.

Every opener raises ``FileNotFoundError`` or ``ValueError`` naming the command-line option and
the path or index, so the command line can print it as one line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import cv2
import numpy as np

from ..image_files import IMAGE_EXTENSIONS, list_images

#: Frame rate assumed where the source does not tell one (webcams, image folders, streams).
DEFAULT_FPS = 30.0


class FrameSource:
    """Frames one at a time.

    ``label`` names the source in messages, ``fps`` is its frame rate (``DEFAULT_FPS`` when
    unknown) and ``frame_count`` its length when known.
    """

    def __init__(self, label: str, fps: float, frame_count: Optional[int]) -> None:
        self.label = label
        self.fps = fps if 0 < fps < 1000 else DEFAULT_FPS
        self.frame_count = frame_count if frame_count and frame_count > 0 else None

    def read(self) -> Optional[np.ndarray]:
        """The next BGR frame, or ``None`` at the end."""
        raise NotImplementedError

    def release(self) -> None:
        """Free the device or file."""


class CaptureSource(FrameSource):
    """A ``cv2.VideoCapture``: video file, stream or webcam."""

    def __init__(self, capture: cv2.VideoCapture, label: str) -> None:
        super().__init__(
            label, capture.get(cv2.CAP_PROP_FPS), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        )
        self._capture = capture

    def read(self) -> Optional[np.ndarray]:
        ok, frame = self._capture.read()
        return frame if ok else None

    def release(self) -> None:
        self._capture.release()


class ImageFolderSource(FrameSource):
    """Image files read in the order given."""

    def __init__(self, files: List[Path], label: str) -> None:
        super().__init__(label, DEFAULT_FPS, len(files))
        self._files = files
        self._next = 0

    def read(self) -> Optional[np.ndarray]:
        if self._next >= len(self._files):
            return None
        path = self._files[self._next]
        self._next += 1
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise ValueError(f"--images: cannot read image {path} (not an image OpenCV can decode)")
        return frame

    def release(self) -> None:
        self._next = len(self._files)


def open_video(path: str) -> CaptureSource:
    """A video file, or a URL / image-sequence pattern (``img_%04d.jpg``) that OpenCV opens."""
    is_pattern = "://" in path or "%" in path
    if not is_pattern and not os.path.exists(path):
        raise FileNotFoundError(f"--video: no such file: {path}")
    if os.path.isdir(path):
        raise ValueError(f"--video: {path} is a folder; use --images for a folder of frames")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise ValueError(f"--video: cannot read {path}: OpenCV cannot open it as a video")
    return CaptureSource(capture, f"video {path}")


def open_webcam(index: int) -> CaptureSource:
    """Camera number ``index`` (0 is the first camera)."""
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise ValueError(
            f"--webcam: camera {index} is not available (no such device, or it is busy or not "
            "permitted)"
        )
    return CaptureSource(capture, f"webcam {index}")


def open_images(folder: str) -> ImageFolderSource:
    """The image files directly inside ``folder``, by name, numbers compared as numbers."""
    root = Path(folder)
    if not root.exists():
        raise FileNotFoundError(f"--images: no such folder: {folder}")
    if not root.is_dir():
        raise ValueError(f"--images: {folder} is not a folder (use --video for a video file)")
    files = list_images(root)
    if not files:
        hint = f" (the frames seem to be in {root / 'img'})" if (root / "img").is_dir() else ""
        raise ValueError(
            f"--images: no image files ({', '.join(IMAGE_EXTENSIONS)}) in {folder}{hint}"
        )
    return ImageFolderSource(files, f"image folder {folder}")

