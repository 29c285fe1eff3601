"""``python -m tracker.demo`` on a real damaged video file, not a mocked capture.

The file is an MJPG AVI cut short after frame 20 of 40: its header still announces 40 frames
and OpenCV opens it, but decodes only the 20 whose data is left (an MP4 cut short loses its
``moov`` atom and does not open at all).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import List

import cv2
import numpy as np
import pytest

from tests.test_demo import _demo, _saved_rows

FRAMES = 40
KEPT = 20
SIZE = (64, 48)


def _frame_chunks(data: bytes) -> List[int]:
    """Offsets of the ``00dc`` (compressed video frame) chunks in an AVI's ``movi`` list."""
    offsets = []
    position = data.index(b"movi") + 4
    while data[position:position + 4] == b"00dc":
        offsets.append(position)
        size = struct.unpack("<I", data[position + 4:position + 8])[0]
        position += 8 + size + (size & 1)  # RIFF chunks are padded to an even size
    return offsets


@pytest.fixture
def damaged_video(tmp_path: Path) -> Path:
    """A 40-frame MJPG AVI (a block drifting over grey) truncated after its 20th frame."""
    path = tmp_path / "damaged.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, SIZE)
    for number in range(FRAMES):
        frame = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
        frame[14:32, 10 + number // 2:34 + number // 2] = (40, 200, 240)
        writer.write(frame)
    writer.release()
    data = path.read_bytes()
    chunks = _frame_chunks(data)
    assert len(chunks) == FRAMES, "the writer's AVI layout changed"
    path.write_bytes(data[:chunks[KEPT]])
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened() and capture.get(cv2.CAP_PROP_FRAME_COUNT) == FRAMES
    capture.release()
    return path


def test_a_truncated_video_is_reported_with_its_frame_counts_and_exit_code_3(damaged_video,
                                                                             tmp_path):
    boxes = tmp_path / "boxes.txt"
    result = _demo("--video", str(damaged_video), "--init", "10,14,24,18", "--no-display",
                   "--save-boxes", str(boxes))
    assert result.returncode == 3, result.stderr
    assert (f"warning: video {damaged_video} ended after {KEPT} of {FRAMES} frames: "
            "truncated or corrupt") in result.stderr.splitlines()
    assert f"frames: {KEPT}" in result.stdout.splitlines()
    assert (f"warning: video ended after {KEPT} of {FRAMES} frames: truncated or corrupt"
            in result.stdout.splitlines())
    assert [row[:2] for row in _saved_rows(boxes)] == [(frame, 0) for frame in range(KEPT)]
    assert "Traceback" not in result.stderr
