"""Training crops: the tracker's crop code, the box mapping, each augmentation's effect."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest

from tracker.conventions import convention
from tracker.crop import crop_square, padding_value
from tracker.train.data.augment import AugmentSettings, make_crops

BOX = (150.0, 120.0, 40.0, 30.0)  # covers pixels x 150..189, y 120..149


def still(style="pysot", **changes):
    """Settings with every jitter and pixel augmentation off, then ``changes``."""
    base = AugmentSettings.siamfc() if style == "siamfc" else AugmentSettings.pysot()
    off = dict(template_shift=0.0, template_scale=0.0, template_colour=0.0, search_shift=0.0,
               search_scale=0.0, search_blur=0.0, search_colour=0.0)
    return dataclasses.replace(base, **{**off, **changes})


def frame_with_rectangle(background=50):
    frame = np.full((300, 400, 3), background, dtype=np.uint8)
    frame[120:150, 150:190] = 255
    return frame


def textured_frame(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (300, 400, 3), dtype=np.uint8)


def crops(settings, frame=None, seed=0):
    frame = frame_with_rectangle() if frame is None else frame
    return make_crops(frame, BOX, frame, BOX, settings, np.random.default_rng(seed))


def pad_of(frame, rules):
    return padding_value(np.asarray(cv2.mean(frame)[:3]), rules)


def measured_corner(crop):
    """Extent of the bright rectangle in a crop (pixel-index corners), thresholded halfway."""
    bright = crop[..., 0] > (50 + 255) / 2
    rows, cols = np.flatnonzero(bright.any(axis=1)), np.flatnonzero(bright.any(axis=0))
    return np.array([cols[0] - 0.5, rows[0] - 0.5, cols[-1] + 0.5, rows[-1] + 0.5])


def test_still_crops_are_the_trackers_crops_and_the_box_is_mapped_by_hand():
    result = crops(still())
    frame, rules = frame_with_rectangle(), convention("pysot")
    # centre (150 + 39/2, 120 + 29/2); s_z = sqrt((40 + 35)(30 + 35)); s_x = s_z * 255 / 127
    s_z = math.sqrt(75 * 65)
    assert result.template_window == (169.5, 134.5, 70)
    assert result.search_window == (169.5, 134.5, 140)
    assert round(s_z) == 70 and round(s_z * 255 / 127) == 140
    pad = pad_of(frame, rules)
    assert np.array_equal(result.template, crop_square(frame, (169.5, 134.5), 70, 127, pad, rules))
    assert np.array_equal(result.search, crop_square(frame, (169.5, 134.5), 140, 255, pad, rules))
    # pysot's window starts at floor(169.5 - 141 / 2 + 0.5) = 99 and floor(134.5 - 70.5 + 0.5) = 64
    k = 255 / 140
    centre_x, centre_y = (169.5 - 99 + 0.5) * k - 0.5, (134.5 - 64 + 0.5) * k - 0.5
    expected = [centre_x - 20 * k, centre_y - 15 * k, centre_x + 20 * k, centre_y + 15 * k]
    assert result.search_box_corner == pytest.approx(expected, abs=1e-9)
    assert measured_corner(result.search) == pytest.approx(expected, abs=1.0)


def test_siamfc_still_crop_centres_the_target_at_the_crops_centre_pixel():
    result = crops(still("siamfc", search_size=255))
    k = 255 / 140
    assert result.search_box_corner == pytest.approx(
        [127 - 20 * k, 127 - 15 * k, 127 + 20 * k, 127 + 15 * k], abs=1e-9)
    trained = crops(still("siamfc"))
    assert trained.search.shape == (239, 239, 3)
    assert trained.search_window[2] == round(math.sqrt(75 * 65) * 239 / 127)


@pytest.mark.parametrize("style", ["pysot", "siamfc"])
def test_shift_and_scale_move_the_content_where_the_box_says(style):
    settings = dataclasses.replace(AugmentSettings.pysot() if style == "pysot"
                                   else AugmentSettings.siamfc(),
                                   search_colour=0.0, search_blur=0.0, template_colour=0.0)
    centred = crops(still(style)).search_box_corner
    # plus the whole-pixel window origins of both crops: up to 1 frame pixel = 255/140 here
    reach = settings.search_shift * (1 + settings.search_scale) + 255 / 140 * 1.2
    moved = []
    for seed in range(12):
        result = crops(settings, seed=seed)
        assert measured_corner(result.search) == pytest.approx(result.search_box_corner, abs=1.0)
        offset = (result.search_box_corner[:2] + result.search_box_corner[2:]) / 2 \
            - (centred[:2] + centred[2:]) / 2
        assert np.abs(offset).max() <= reach
        moved.append(np.abs(offset).max())
        frame, rules = frame_with_rectangle(), convention(settings.convention)
        cx, cy, side = result.search_window
        assert np.array_equal(result.search, crop_square(
            frame, (cx, cy), side, settings.search_size, pad_of(frame, rules), rules))
    assert max(moved) > (20 if style == "pysot" else 2)


def test_blur_lowers_high_frequency_energy_and_keeps_the_geometry():
    frame = textured_frame()
    sharp = crops(still(), frame, seed=3)
    blurred = crops(still(search_blur=1.0), frame, seed=3)
    assert blurred.search_window == sharp.search_window

    def energy(image):
        return float(np.mean(cv2.Laplacian(image.astype(np.float32), cv2.CV_32F) ** 2))

    assert energy(blurred.search) < 0.5 * energy(sharp.search)
    assert np.array_equal(blurred.template, sharp.template)
    assert abs(blurred.search.mean() - sharp.search.mean()) < 2


def test_grayscale_makes_both_crops_channels_equal():
    frame = textured_frame()
    gray = crops(still(grayscale=1.0), frame)
    for crop in (gray.template, gray.search):
        assert np.array_equal(crop[..., 0], crop[..., 1])
        assert np.array_equal(crop[..., 1], crop[..., 2])
    colour = crops(still(), frame)
    assert not np.array_equal(colour.search[..., 0], colour.search[..., 2])


def test_flip_mirrors_the_crop_and_the_box():
    plain = crops(still(search_shift=30.0), seed=5)
    flipped = crops(still(search_shift=30.0, search_flip=1.0), seed=5)
    assert np.array_equal(flipped.search, plain.search[:, ::-1])
    x1, y1, x2, y2 = plain.search_box_corner
    assert flipped.search_box_corner == pytest.approx([254 - x2, y1, 254 - x1, y2])
    assert measured_corner(flipped.search) == pytest.approx(flipped.search_box_corner, abs=1.0)
    assert np.array_equal(flipped.template, plain.template)


def test_colour_jitter_is_a_per_channel_offset_with_pysots_spread():
    frame = np.full((150, 200, 3), 128, dtype=np.uint8)
    box = (80.0, 60.0, 40.0, 30.0)
    settings = still(search_colour=1.0)
    plain = make_crops(frame, box, frame, box, still(), np.random.default_rng(0)).search
    offsets = []
    for seed in range(200):
        jittered = make_crops(frame, box, frame, box, settings, np.random.default_rng(seed))
        difference = plain.astype(np.int16) - jittered.search.astype(np.int16)
        if seed < 10:
            assert difference.reshape(-1, 3).std(axis=0).max() == 0  # one offset per channel
        offsets.append(difference[0, 0])
    # BGR channels take the R, G, B rows of the basis reversed: spreads |row| = 8.20, 2.52, 1.20
    spread = np.std(np.array(offsets, dtype=np.float64), axis=0)
    assert spread == pytest.approx([8.20, 2.52, 1.20], rel=0.15)


def test_the_same_random_stream_gives_the_same_crops():
    settings = dataclasses.replace(AugmentSettings.pysot(), search_flip=0.5, grayscale=0.5)
    frame = textured_frame(1)
    first, second = crops(settings, frame, seed=11), crops(settings, frame, seed=11)
    assert np.array_equal(first.search, second.search)
    assert np.array_equal(first.search_box_corner, second.search_box_corner)
    assert not np.array_equal(first.search, crops(settings, frame, seed=12).search)


def test_reference_settings_and_bad_input():
    siamfc = AugmentSettings.siamfc()
    assert (siamfc.search_size - siamfc.exemplar_size) // 8 + 1 == 15
    assert (siamfc.style, siamfc.convention, siamfc.search_scale, siamfc.search_shift) == (
        "siamfc", "siamfc", 0.05, 4.0)
    pysot = AugmentSettings.pysot()
    assert (pysot.template_shift, pysot.template_scale, pysot.search_shift, pysot.search_scale,
            pysot.search_blur, pysot.search_colour, pysot.search_flip, pysot.grayscale) == (
        4.0, 0.05, 64.0, 0.18, 0.2, 1.0, 0.0, 0.0)
    assert AugmentSettings(**dataclasses.asdict(pysot)) == pysot == AugmentSettings.nanotrack()
    with pytest.raises(ValueError, match="augment.style must be one of"):
        AugmentSettings(style="mmtrack")
    with pytest.raises(ValueError, match=r"search_blur must be a number in \[0, 1\], got 2$"):
        AugmentSettings(search_blur=2)
    with pytest.raises(ValueError, match="augment.convention must be one of"):
        AugmentSettings(convention="opencv")
    with pytest.raises(ValueError, match=r"augment.search_size \(100\) must be at least"):
        AugmentSettings(search_size=100)
    frame = frame_with_rectangle()
    with pytest.raises(ValueError, match="search_frame must be an H x W x 3 uint8 array"):
        make_crops(frame, BOX, frame[..., 0], BOX, pysot, np.random.default_rng(0))
    with pytest.raises(ValueError, match="template_box must be a finite"):
        make_crops(frame, (1, 2, 0, 4), frame, BOX, pysot, np.random.default_rng(0))
