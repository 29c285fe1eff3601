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


@pytest.mark.parametrize("out_size", [127, 255, 271])
def test_crops_from_samples_equal_the_full_window(out_size):
    """Every window size around the awkward ones (just above the output, 2x, whole multiples,
    under 3x, huge), placed past each side of the frame and past all of them, equals the
    fully padded recipe bit for bit."""
    assert crop._sampled_arithmetic_matches(out_size)
    generator = np.random.default_rng(out_size)
    image = generator.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    pad = np.array([90, 140, 30], np.uint8)
    sizes = [out_size - 1, out_size, out_size + 1, 2 * out_size - 1, 2 * out_size,
             2 * out_size + 1, 3 * out_size - 1, 3 * out_size, 5 * out_size, 9 * out_size + 4]
    for size in sizes:
        for center in [(-20.0, 45.0), (180.0, 45.0), (80.0, -30.0), (80.0, 120.0),
                       (80.0, 45.0), (-size / 2 + 3.0, 93.0 + size / 2)]:
            np.testing.assert_array_equal(
                crop_square(image, center, size, out_size, pad),
                _fully_padded_crop(image, center, size, out_size, pad),
                err_msg=f"size {size} centre {center}",
            )


def test_the_sampled_crop_is_refused_when_this_opencv_computes_otherwise(monkeypatch):
    """The once-per-output-size check catches arithmetic that differs from cv2.resize."""
    shrink = crop._shrink_sampled
    monkeypatch.setattr(crop, "_shrink_sampled", lambda *args: shrink(*args) // 2 * 2)
    assert crop._sampled_arithmetic_matches.__wrapped__(255) is False
    assert not crop._samples_are_exact(510, 255)  # a 2x shrink averages 2 x 2 blocks
    assert not crop._samples_are_exact(255, 255)
