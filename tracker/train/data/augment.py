"""Training crops of a pair with the references' augmentation, cut by the tracker's crop code.

Every crop is one :func:`tracker.crop.crop_square` call with the model's convention and the
frame's mean-colour padding, exactly as the tracking loops cut theirs: a network sees in
training what it sees when tracking. Augmentation moves and scales that window (the
references' shift and scale jitter) and then alters the cut pixels (grayscale, colour, blur,
flip). The target's box in the search crop is mapped through the window the crop used.

Networks get their input from the crops through :func:`tracker.loops.base.to_blob`, the
conversion the tracking loops use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Tuple

import cv2
import numpy as np

from ...conventions import Convention, convention
from ...crop import crop_square, padding_value, window_origin
from ...geometry import Box, box_to_center, context_size
from ...loops.base import channel_means

STYLES: Tuple[str, ...] = ("pysot", "siamfc")

#: pysot's colour jitter: the offset subtracted from a crop is this matrix (rows R, G, B)
#: times three standard normal numbers; a PCA basis of natural-image colours, scaled.
_COLOUR_BASIS_RGB = np.array([
    [-0.55919361, 0.98062831, -0.41940627],
    [1.72091413, 0.19879334, -1.82968581],
    [4.64467907, 4.73710203, 4.88324118],
])

#: pysot's blur: a cross-shaped kernel of an odd size drawn from this range
_BLUR_SIZES = np.arange(5, 46, 2)


@dataclass(frozen=True)
class AugmentSettings:
    """Crop geometry and augmentation of one family's training pairs.

    ``style``: ``"pysot"`` (shift uniform in ``[-shift, shift]`` crop pixels, the window
    scaled by ``1 + u * scale``, u uniform in [-1, 1]) or ``"siamfc"`` (siamfc-pytorch's
    random stretch ``1 + u * scale`` of the crop and a whole-pixel random crop of at most
    ``shift`` pixels off centre). Crops are ``exemplar_size`` and ``search_size`` pixels at
    the scale ``exemplar_size / s_z`` (``s_z``: the context region's side, ``context_amount``).
    ``convention``: the model's crop rules (:mod:`tracker.conventions`). Probabilities per
    crop: ``*_blur`` (pysot's random cross-shaped kernel), ``*_colour`` (pysot's PCA colour
    offset), ``*_flip`` (horizontal mirror); ``grayscale`` once per pair for both crops.
    """

    style: str = "pysot"
    exemplar_size: int = 127
    search_size: int = 255
    context_amount: float = 0.5
    convention: str = "pysot"
    template_shift: float = 4.0
    template_scale: float = 0.05
    template_blur: float = 0.0
    template_colour: float = 1.0
    template_flip: float = 0.0
    search_shift: float = 64.0
    search_scale: float = 0.18
    search_blur: float = 0.2
    search_colour: float = 1.0
    search_flip: float = 0.0
    grayscale: float = 0.0

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"augment.style must be one of {STYLES}, got {self.style!r}")
        try:
            convention(self.convention)
        except ValueError as error:
            raise ValueError(f"augment.{error}") from None
        for name in ("exemplar_size", "search_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"augment.{name} must be an int >= 1, got {value!r}")
        if self.search_size < self.exemplar_size:
            raise ValueError(f"augment.search_size ({self.search_size}) must be at least "
                             f"augment.exemplar_size ({self.exemplar_size})")
        for spec in fields(self):
            if spec.name in ("style", "convention", "exemplar_size", "search_size"):
                continue
            value = getattr(self, spec.name)
            high = 1.0 if spec.name.endswith(("blur", "colour", "flip", "scale")) or (
                spec.name == "grayscale") else math.inf
            low_open = spec.name == "context_amount"
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0 <= value <= high) or math.isnan(value) or (low_open and value == 0):
                wanted = "> 0" if low_open else f"in [0, {high:g}]"
                raise ValueError(f"augment.{spec.name} must be a number {wanted}, got {value!r}")
            object.__setattr__(self, spec.name, float(value))

    @classmethod
    def pysot(cls) -> "AugmentSettings":
        """pysot: template shift 4, scale 0.05; search shift 64, scale 0.18, blur 0.2;
        colour 1.0 on both; no flip, no grayscale."""
        return cls()

    @classmethod
    def nanotrack(cls) -> "AugmentSettings":
        """NanoTrack v2: pysot's augmentation (search blur 0.2)."""
        return cls()

    @classmethod
    def siamfc(cls) -> "AugmentSettings":
        """siamfc-pytorch: stretch 0.05 and a random crop within 4 px of the centre for both
        crops; the search crop 255 - 16 = 239 px so the response map is 15 x 15."""
        return cls(style="siamfc", search_size=239, convention="siamfc",
                   template_shift=4.0, template_scale=0.05, template_colour=0.0,
                   search_shift=4.0, search_scale=0.05, search_blur=0.0, search_colour=0.0)


@dataclass(frozen=True)
class Crops:
    """The two crops of a pair (uint8 H x W x 3, the frames' channel order).

    ``search_box_corner``: the search target as float64 ``(x1, y1, x2, y2)`` in the search
    crop's pixel-index coordinates (pixel ``j``'s centre at ``j``; a target centred in a
    255-pixel crop has its centre at 127), what the training targets take.
    ``*_window``: the frame window each crop was cut from, ``(cx, cy, side)`` as passed to
    :func:`~tracker.crop.crop_square`.
    """

    template: np.ndarray
    search: np.ndarray
    search_box_corner: np.ndarray
    template_window: Tuple[float, float, int]
    search_window: Tuple[float, float, int]


def make_crops(
    template_frame: np.ndarray,
    template_box: Box,
    search_frame: np.ndarray,
    search_box: Box,
    settings: AugmentSettings,
    rng: np.random.Generator,
) -> Crops:
    """Cut and augment a pair's crops; boxes are ``(x, y, w, h)`` in the library's corner
    convention, frames H x W x 3 uint8. Draws the same amount of random numbers whatever the
    settings, so switching one augmentation off leaves the others' draws unchanged."""
    for name, frame in (("template_frame", template_frame), ("search_frame", search_frame)):
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 \
                or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
            raise ValueError(f"{name} must be an H x W x 3 uint8 array, got "
                             f"{getattr(frame, 'shape', type(frame).__name__)} "
                             f"{getattr(frame, 'dtype', '')}".rstrip())
    for name, box in (("template_box", template_box), ("search_box", search_box)):
        values = np.asarray(box, dtype=np.float64)
        if values.shape != (4,) or not np.isfinite(values).all() or (values[2:] <= 0).any():
            raise ValueError(f"{name} must be a finite (x, y, w, h) with w, h > 0, got {box!r}")
    rules = convention(settings.convention)
    template, template_window, _ = _cut(
        template_frame, template_box, settings.exemplar_size, settings.template_shift,
        settings.template_scale, settings, rules, rng)
    search, search_window, box = _cut(
        search_frame, search_box, settings.search_size, settings.search_shift,
        settings.search_scale, settings, rules, rng)
    if rng.random() < settings.grayscale:
        template, search = _grayscale(template), _grayscale(search)
    template = _photometric(template, settings.template_colour, settings.template_blur, rng)
    search = _photometric(search, settings.search_colour, settings.search_blur, rng)
    if rng.random() < settings.template_flip:
        template = np.ascontiguousarray(template[:, ::-1])
    if rng.random() < settings.search_flip:
        search = np.ascontiguousarray(search[:, ::-1])
        last = settings.search_size - 1
        box = np.array([last - box[2], box[1], last - box[0], box[3]])
    return Crops(template, search, box, template_window, search_window)


def _cut(
    frame: np.ndarray, box: Box, out_size: int, shift: float, scale: float,
    settings: AugmentSettings, rules: Convention, rng: np.random.Generator,
) -> Tuple[np.ndarray, Tuple[float, float, int], np.ndarray]:
    """One jittered crop, its window and the target's corner box in it."""
    cx, cy, w, h = box_to_center(tuple(float(v) for v in box))
    # frame pixels per crop pixel before the jitter: the tracker's scale exemplar / s_z
    unit = context_size(w, h, settings.context_amount) / settings.exemplar_size
    u_scale = rng.uniform(-1.0, 1.0)
    if settings.style == "pysot":
        unit *= 1.0 + u_scale * scale
        offsets = rng.uniform(-1.0, 1.0, 2) * shift
    else:
        unit /= 1.0 + u_scale * scale
        reach = int(math.floor(shift))
        offsets = rng.integers(-reach, reach + 1, 2).astype(np.float64)
    window_cx, window_cy = cx + offsets[0] * unit, cy + offsets[1] * unit
    side = max(1, round(unit * out_size))
    pad = padding_value(channel_means(frame), rules)
    crop = crop_square(frame, (window_cx, window_cy), side, out_size, pad, rules)
    # cv2.resize maps pixel-index coordinate u of the window to (u + 0.5) * k - 0.5.
    k = out_size / side
    x0, y0 = window_origin(window_cx, side, rules), window_origin(window_cy, side, rules)
    centre_x, centre_y = (cx - x0 + 0.5) * k - 0.5, (cy - y0 + 0.5) * k - 0.5
    half_w, half_h = w * k / 2, h * k / 2
    corner = np.array([centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h])
    return crop, (window_cx, window_cy, side), corner


def _grayscale(crop: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def _photometric(crop: np.ndarray, colour: float, blur: float,
                 rng: np.random.Generator) -> np.ndarray:
    """pysot's colour offset then its blur, each with its probability."""
    apply_colour = rng.random() < colour
    offset_rgb = _COLOUR_BASIS_RGB @ rng.standard_normal(3)
    apply_blur = rng.random() < blur
    size = int(rng.choice(_BLUR_SIZES))
    vertical = rng.random()
    if apply_colour:
        # One table per channel: the offset crop, rounded and clipped to uint8.
        levels = np.arange(256, dtype=np.float64)[:, None] - offset_rgb[::-1][None, :]
        table = np.clip(np.rint(levels), 0, 255).astype(np.uint8)
        crop = cv2.LUT(crop, table[:, None, :])
    if apply_blur:
        # A cross: the centre column weighs `vertical`, the centre row the rest (weights sum
        # to 1), i.e. a mix of a vertical and a horizontal moving average.
        column = cv2.boxFilter(crop, cv2.CV_32F, (1, size))
        row = cv2.boxFilter(crop, cv2.CV_32F, (size, 1))
        crop = cv2.addWeighted(column, vertical, row, 1.0 - vertical, 0.0, dtype=cv2.CV_8U)
    return crop
