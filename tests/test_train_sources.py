"""Training datasets on disk: ``--data`` values, each layout's boxes and visibility, skipped
sequences, bad input and the decoded-once video cache (tiny synthetic datasets)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import pytest

from tests.conftest import shared_path
from tracker.train.data.sources import (
    KINDS,
    DataSpec,
    decoded_video,
    load_sequences,
    parse_data_spec,
)

SIZE = (24, 32)  # frame height, width


def _frames(folder: Path, count: int, digits: int) -> None:
    folder.mkdir(parents=True)
    for index in range(count):
        frame = np.full(SIZE + (3,), 40 * index, np.uint8)
        assert cv2.imwrite(str(folder / f"{index + 1:0{digits}d}.jpg"), frame)


def _lines(path: Path, rows: Sequence[str]) -> None:
    path.write_text("\n".join(rows) + "\n")


def _by_name(load):
    return {sequence.name: sequence for sequence in load.sequences}


# --- parse_data_spec -------------------------------------------------------------------------


def test_parse_data_spec_kind_weight_and_path(tmp_path):
    assert parse_data_spec(f"got10k:{tmp_path}") == DataSpec("got10k", str(tmp_path), 1.0)
    clip = tmp_path / "airplane-1.mp4"
    clip.write_bytes(b"")
    spec = parse_data_spec(f"video@2:{clip}")
    assert spec == DataSpec("video", str(clip), 2.0)
    assert str(spec) == f"video@2:{clip}"
    assert parse_data_spec(f"lasot@0.25:{tmp_path}").weight == 0.25


@pytest.mark.parametrize("text, message", [
    ("imagenet:{root}", "unknown KIND 'imagenet'; expected one of got10k, lasot, otb, video"),
    ("otb@0:{root}", "WEIGHT must be a positive number, got 0.0"),
    ("otb@-1:{root}", "WEIGHT must be a positive number, got -1.0"),
    ("otb@nan:{root}", "WEIGHT must be a positive number, got nan"),
    ("otb@heavy:{root}", "WEIGHT 'heavy' is not a number"),
    ("{root}", "must be KIND:PATH or KIND@WEIGHT:PATH with KIND one of got10k, lasot, otb, video"),
    ("otb:", "must be KIND:PATH or KIND@WEIGHT:PATH"),
])
def test_parse_data_spec_refuses_bad_values(tmp_path, text, message):
    with pytest.raises(ValueError) as error:
        parse_data_spec(text.format(root=tmp_path))
    assert message in str(error.value)
    assert ", ".join(KINDS) in str(error.value)


def test_missing_path_is_named(tmp_path):
    missing = tmp_path / "GOT-10k" / "train"
    with pytest.raises(FileNotFoundError) as error:
        parse_data_spec(f"got10k:{missing}")
    assert str(error.value) == f"--data got10k:{missing}: {missing} does not exist"
    with pytest.raises(FileNotFoundError) as error:
        load_sequences(DataSpec("lasot", str(missing)), tmp_path / "cache")
    assert str(error.value) == f"--data lasot:{missing}: {missing} does not exist"


def test_unknown_kind_in_a_spec_object(tmp_path):
    with pytest.raises(ValueError, match="unknown KIND 'vot'; expected one of got10k, lasot, otb"):
        DataSpec("vot", str(tmp_path))


# --- otb ----------------------------------------------------------------------------------------


def _otb_root(tmp_path: Path) -> Path:
    root = tmp_path / "otb"
    _frames(root / "Foo" / "img", 4, 4)
    _lines(root / "Foo" / "groundtruth_rect.txt",
           ["5,6,10,8", "NaN,NaN,NaN,NaN", "0,0,0,0", "7.5,3,12,9"])
    _frames(root / "Bar" / "img", 3, 4)
    _lines(root / "Bar" / "groundtruth_rect.txt", ["5,6,10,8", "5,6,10,8"])
    return root


def test_otb_boxes_are_zero_based_and_absent_rows_invalid(tmp_path):
    load = load_sequences(parse_data_spec(f"otb:{_otb_root(tmp_path)}"), tmp_path / "cache")
    (foo,) = load.sequences
    assert foo.name == "otb:Foo"
    np.testing.assert_array_equal(foo.boxes[[0, 3]], [[4, 5, 10, 8], [6.5, 2, 12, 9]])
    assert foo.valid.tolist() == [True, False, False, True]
    assert foo.frames.read(3).shape == SIZE + (3,)
    assert load.skipped == (
        f"otb:Bar: 3 frames but 2 annotation lines in {tmp_path / 'otb' / 'Bar' / 'img'}; skipped",
    )


def test_nothing_left_after_skipping_is_an_error(tmp_path):
    root = _otb_root(tmp_path)
    (root / "Foo" / "groundtruth_rect.txt").write_text("5,6,10,8\n")
    with pytest.raises(ValueError) as error:
        load_sequences(DataSpec("otb", str(root)), tmp_path / "cache")
    message = str(error.value)
    assert message.startswith(f"--data otb:{root}: no training sequence left in {root}: ")
    assert "all 2 sequence(s) were skipped, e.g. otb:Bar: 3 frames but 2 annotation" in message


def test_empty_folder_names_the_layout(tmp_path):
    with pytest.raises(ValueError, match=r"holds no sequence in the otb layout \(<root>/<Name>"):
        load_sequences(DataSpec("otb", str(tmp_path)), tmp_path / "cache")


def test_real_otb_sequences():
    root = shared_path("data", "otb")
    load = load_sequences(DataSpec("otb", str(root)), Path("unused"))
    sequences = _by_name(load)
    assert load.skipped == ()
    assert len(sequences) == 10
    football = sequences["otb:Football1"]
    assert len(football) == 74
    np.testing.assert_array_equal(football.boxes[0], [152, 104, 26, 43])  # file: 153,105,26,43
    assert football.frames.read(0).shape == (288, 352, 3)


# --- lasot --------------------------------------------------------------------------------------


def test_lasot_occlusion_and_out_of_view(tmp_path):
    root = tmp_path / "lasot"
    good = root / "bird" / "bird-3"
    _frames(good / "img", 4, 8)
    _lines(good / "groundtruth.txt", ["1,1,10,8", "2,3,10,8", "3,3,0,8", "4,5,6,7"])
    (good / "full_occlusion.txt").write_text("0,1,0,0")
    (good / "out_of_view.txt").write_text("0,0,0,1")
    bad = root / "bird" / "bird-7"
    _frames(bad / "img", 3, 8)
    _lines(bad / "groundtruth.txt", ["1,1,10,8"] * 3)
    (bad / "full_occlusion.txt").write_text("0,0")
    (bad / "out_of_view.txt").write_text("0,0,0")
    load = load_sequences(DataSpec("lasot", str(root)), tmp_path / "cache")
    (sequence,) = load.sequences
    assert sequence.name == "lasot:bird-3"
    np.testing.assert_array_equal(sequence.boxes, [[0, 0, 10, 8], [1, 2, 10, 8], [2, 2, 0, 8],
                                                   [3, 4, 6, 7]])
    assert sequence.valid.tolist() == [True, False, False, False]  # occluded, empty, out of view
    assert load.skipped == (
        f"lasot:bird-7: 3 frames but 2 labels in {bad / 'full_occlusion.txt'}; skipped",
    )


# --- got10k -------------------------------------------------------------------------------------


def _got10k_root(tmp_path: Path) -> Path:
    split = tmp_path / "GOT-10k" / "train"
    first = split / "GOT-10k_Train_000001"
    _frames(first, 5, 8)
    _lines(first / "groundtruth.txt",
           ["1,2,10,8", "3,4,10,8", "5,6,10,8", "7,8,10,8", "9,10,10,nan"])
    _lines(first / "absence.label", ["0", "0", "1", "0", "0"])
    _lines(first / "cover.label", ["8", "0", "8", "3", "8"])
    second = split / "GOT-10k_Train_000002"
    _frames(second, 3, 8)
    _lines(second / "groundtruth.txt", ["1,2,10,8"] * 4)
    _lines(split / "list.txt", ["GOT-10k_Train_000001", "GOT-10k_Train_000002",
                                "GOT-10k_Train_000003"])
    return split


@pytest.mark.parametrize("level", ["root", "split"])
def test_got10k_absence_cover_and_skips(tmp_path, level):
    split = _got10k_root(tmp_path)
    path = split.parent if level == "root" else split
    load = load_sequences(parse_data_spec(f"got10k:{path}"), tmp_path / "cache")
    (sequence,) = load.sequences
    assert sequence.name == "got10k:GOT-10k_Train_000001"
    np.testing.assert_array_equal(sequence.boxes[:4], [[0, 1, 10, 8], [2, 3, 10, 8],
                                                       [4, 5, 10, 8], [6, 7, 10, 8]])
    # absent (absence 1), fully covered (cover 0) and NaN frames are never sampled
    assert sequence.valid.tolist() == [True, False, False, True, False]
    assert load.skipped == (
        "got10k:GOT-10k_Train_000002: 3 frames but 4 annotation lines in "
        f"{split / 'GOT-10k_Train_000002' / 'groundtruth.txt'}; skipped",
        "got10k:GOT-10k_Train_000003: listed in list.txt but "
        f"{split / 'GOT-10k_Train_000003' / 'groundtruth.txt'} does not exist; skipped",
    )


@pytest.mark.parametrize("frames, expected", [
    (4, "4 frames but 1 annotation lines in {anno}; skipped"),
    (1, "a single frame, which the got10k toolkit cannot read; skipped"),
])
def test_got10k_one_line_ground_truth(tmp_path, frames, expected):
    # The toolkit reads a one-line groundtruth.txt as a flat row: 4 "boxes" for 4 frames.
    split = _got10k_root(tmp_path)
    odd = split / "GOT-10k_Train_000003"
    _frames(odd, frames, 8)
    _lines(odd / "groundtruth.txt", ["1,2,10,8"])
    load = load_sequences(DataSpec("got10k", str(split)), tmp_path / "cache")
    assert load.skipped[-1] == (
        "got10k:GOT-10k_Train_000003: " + expected.format(anno=odd / "groundtruth.txt")
    )


def test_path_of_the_wrong_type(tmp_path):
    with pytest.raises(ValueError, match=f"{re.escape(str(tmp_path))} must be a video file"):
        load_sequences(DataSpec("video", str(tmp_path)), tmp_path / "cache")
    clip = _video(tmp_path, 2, 2)
    with pytest.raises(ValueError, match=f"{re.escape(str(clip))} must be a folder"):
        load_sequences(DataSpec("otb", str(clip)), tmp_path / "cache")


def test_got10k_without_list_names_the_layout(tmp_path):
    _frames(tmp_path / "seq", 2, 8)
    with pytest.raises(ValueError, match=r"no sequence in the got10k layout \(<root>/train/list"):
        load_sequences(DataSpec("got10k", str(tmp_path)), tmp_path / "cache")


# --- video --------------------------------------------------------------------------------------


def _video(tmp_path: Path, frames: int, lines: int) -> Path:
    clip = tmp_path / "clips" / "plane-1.avi"
    clip.parent.mkdir()
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE[::-1])
    for index in range(frames):
        writer.write(np.full(SIZE + (3,), 50 * index, np.uint8))
    writer.release()
    _lines(clip.with_suffix(".txt"), [f"{index + 1},2,10,8" for index in range(lines)])
    return clip


def test_video_is_decoded_once(tmp_path, monkeypatch):
    clip = _video(tmp_path, 4, 4)
    cache = tmp_path / "cache"
    spec = parse_data_spec(f"video:{clip}")
    (sequence,) = load_sequences(spec, cache).sequences
    assert sequence.name == "video:plane-1"
    np.testing.assert_array_equal(sequence.boxes[:, 0], [0, 1, 2, 3])
    assert sequence.valid.all()
    assert abs(int(sequence.frames.read(2).mean()) - 100) <= 3
    (folder,) = cache.iterdir()
    assert sorted(p.name for p in folder.iterdir())[0] == "00000001.jpg"

    def no_decoding(*args):
        raise AssertionError("the video was decoded again")

    monkeypatch.setattr(cv2, "VideoCapture", no_decoding)
    (again,) = load_sequences(spec, cache).sequences
    assert again.frames.paths == sequence.frames.paths


def test_interrupted_decode_is_not_reused(tmp_path, monkeypatch):
    clip = _video(tmp_path, 4, 4)
    cache = tmp_path / "cache"
    written = []
    real_imwrite = cv2.imwrite

    def fail_on_third(path, image, params):
        written.append(path)
        return len(written) < 3 and real_imwrite(path, image, params)

    monkeypatch.setattr(cv2, "imwrite", fail_on_third)
    with pytest.raises(OSError, match="cannot write the decoded frame .*00000003.jpg"):
        decoded_video(clip, cache)
    assert list(cache.iterdir()) == []
    monkeypatch.setattr(cv2, "imwrite", real_imwrite)
    assert len(load_sequences(DataSpec("video", str(clip)), cache).sequences[0]) == 4


def test_video_shorter_than_its_annotations(tmp_path):
    clip = _video(tmp_path, 3, 5)
    with pytest.raises(ValueError) as error:
        load_sequences(DataSpec("video", str(clip)), tmp_path / "cache")
    assert (f"video:plane-1: 3 frames decoded but 5 annotation lines in {clip.with_suffix('.txt')}"
            " (2 frame(s) missing or undecodable); skipped") in str(error.value)


def test_video_without_boxes(tmp_path):
    clip = _video(tmp_path, 2, 2)
    clip.with_suffix(".txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"expected its boxes in .*plane-1.txt"):
        load_sequences(DataSpec("video", str(clip)), tmp_path / "cache")
