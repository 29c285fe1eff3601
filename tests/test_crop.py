"""The crop function against the reference implementations' recorded crops."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tests.conftest import shared_path
from tracker import crop
from tracker.conventions import CONVENTION_NAMES, convention
from tracker.crop import crop_square, padding_value, window_origin

PYSOT_STYLE = ["pysot/siamrpn_alex_dwxcorr", "pysot/siamrpn_mobilev2_l234_dwxcorr"]


def _cases(folder):
    base = shared_path("fixtures", folder)
    cases = json.loads((base / "crops.json").read_text())["cases"]
    return cases, np.load(base / "crops.npz")


def _frame(case):
    return cv2.imread(str(shared_path("data", "otb", case["sequence"], case["frame_file"])))


@pytest.mark.parametrize("folder", PYSOT_STYLE)
def test_pysot_style_crops_are_exact(folder):
    cases, arrays = _cases(folder)
    assert len(cases) == 10
    for case in cases:
        size = case["original_size"]
        x0 = window_origin(case["center_cxcy_0based"][0], size, convention("pysot"))
        y0 = window_origin(case["center_cxcy_0based"][1], size, convention("pysot"))
        assert [x0, y0] == case["window_x0y0_0based"], case["name"]
        crop = crop_square(
            _frame(case), case["center_cxcy_0based"], size, case["output_size"],
            padding_value(case["avg_chans_bgr"], convention("pysot")), convention("pysot"),
        )
        np.testing.assert_array_equal(crop, arrays[case["array"]], err_msg=case["name"])


def test_siamfc_style_crops_are_exact():
    cases, arrays = _cases("siamfc")
    for case in cases:
        size = int(np.round(case["size"]))
        assert size == case["size_rounded"]
        y0 = window_origin(case["center_cxcy_0based"][1], size, convention("siamfc"))
        x0 = window_origin(case["center_cxcy_0based"][0], size, convention("siamfc"))
        assert [y0, x0] == case["window_y0x0_0based"], case["name"]
        rgb = _frame(case)[..., ::-1]
        crop = crop_square(
            rgb, case["center_cxcy_0based"], size, case["output_size"],
            padding_value(case["avg_color_rgb"], convention("siamfc")), convention("siamfc"),
        )
        np.testing.assert_array_equal(crop, arrays[case["array"]], err_msg=case["name"])


def test_padding_value_truncates_or_rounds():
    assert padding_value([134.43, 144.69, 0.5], convention("pysot")).tolist() == [134, 144, 0]
    assert padding_value([134.43, 144.69, 0.5], convention("siamfc")).tolist() == [134, 145, 0]


def test_origin_rules_differ_where_the_references_do():
    # centre 10, 4-pixel window: pysot floor(10 - 2.5 + 0.5) = 8; DaSiamRPN round(8.0) = 8;
    # siamfc round(10 - 1.5) = round(8.5) = 8 (half to even).
    rules = [convention(name) for name in CONVENTION_NAMES]
    assert CONVENTION_NAMES == ("pysot", "dasiamrpn", "siamfc")
    assert [window_origin(10, 4, r) for r in rules] == [8, 8, 8]
    assert [window_origin(10.5, 5, r) for r in rules] == [8, 8, 8]
    assert [window_origin(11, 4, r) for r in rules] == [9, 9, 10]


def test_window_entirely_outside_is_all_padding():
    image = np.full((20, 30, 3), 7, np.uint8)
    crop = crop_square(image, (-100.0, -100.0), 9, 9, np.array([1, 2, 3], np.uint8))
    assert crop.shape == (9, 9, 3)
    assert (crop.reshape(-1, 3) == [1, 2, 3]).all()


def test_unknown_convention_and_bad_size_are_named():
    with pytest.raises(ValueError, match=r"convention must be one of \('pysot', 'dasiamrpn', "
                       r"'siamfc'\), got 'opencv'"):
        convention("opencv")
    with pytest.raises(ValueError, match="crop size"):
        crop_square(np.zeros((4, 4, 3), np.uint8), (1.0, 1.0), 0, 3, np.zeros(3, np.uint8))


def _fully_padded_crop(image, center, size, out_size, pad):
    """The plain recipe: the whole padded window in memory, then the resize."""
    x0, y0 = (crop.window_origin(c, size) for c in center)
    window = np.empty((size, size, 3), np.uint8)
    window[:] = pad
    ix0, iy0 = max(x0, 0), max(y0, 0)
    ix1, iy1 = min(x0 + size, image.shape[1]), min(y0 + size, image.shape[0])
    if ix0 < ix1 and iy0 < iy1:
        window[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = image[iy0:iy1, ix0:ix1]
    return cv2.resize(window, (out_size, out_size), interpolation=cv2.INTER_LINEAR)


def test_large_windows_written_only_where_the_resize_reads_are_exact():
    """Windows many times the output size only write the rows cv2.resize reads; the crop
    must still equal the fully padded recipe bit for bit, wherever the target sits."""
    assert crop._sparse_padding_is_exact()
    generator = np.random.default_rng(3)
    pad = np.array([90, 140, 30], np.uint8)
    checked = 0
    for _ in range(150):
        out_size = int(generator.choice([127, 255, 271, 287]))
        size = int(generator.integers(3 * out_size, 12 * out_size))
        height, width = int(generator.integers(40, 400)), int(generator.integers(40, 700))
        image = generator.integers(0, 256, (height, width, 3), dtype=np.uint8)
        center = (float(generator.uniform(-size / 2, width + size / 2)),
                  float(generator.uniform(-size / 2, height + size / 2)))
        checked += crop._rows_read_by_resize(size, out_size) is not None
        np.testing.assert_array_equal(
            crop_square(image, center, size, out_size, pad),
            _fully_padded_crop(image, center, size, out_size, pad),
        )
    assert checked > 140


def test_the_sparse_window_is_refused_when_the_resize_reads_other_rows(monkeypatch):
    """The once-per-process check catches a row set that misses rows OpenCV reads."""
    assert len(crop._rows_read_by_resize(1856, 255)) == 2 * 255
    assert crop._rows_read_by_resize(510, 255) is None  # a whole-number factor: every row
    assert crop._rows_read_by_resize(600, 255) is None  # under 3x: most rows anyway
    rows_of = crop._rows_read_by_resize.__wrapped__
    monkeypatch.setattr(crop, "_rows_read_by_resize", lambda size, out: rows_of(size, out)[::2])
    assert crop._sparse_padding_is_exact.__wrapped__() is False
