"""Pairs as network inputs: the torch dataset the trainer's DataLoader reads.

Item ``g`` of an epoch is a pure function of ``(seed, epoch, g)``: the pair, its augmentation
and its sampled targets all come from generators seeded with those numbers, so data-loader
workers, a resumed run and the ranks of a distributed run see exactly the same pairs.
"""

from __future__ import annotations

from typing import Dict, Sequence

import torch
from torch.utils.data import Dataset

from ...loops.base import to_blob
from ..objectives import Objective
from .augment import AugmentSettings, make_crops
from .pairs import PairSampler, pair_rng
from .sequence import FrameError

#: Replacement pairs drawn for one item before its frames are given up as unreadable.
MAX_ATTEMPTS = 20


class PairDataset(Dataset):
    """``indices[i]`` is the global pair index of item ``i`` (the trainer gives each rank and
    step its own indices). Items are dicts of tensors: ``z``, ``x`` (3 x H x W float32 in the
    network's channel order), the objective's targets, and ``skipped``: how many frames could
    not be read before this pair was found (counted and reported by the trainer)."""

    def __init__(self, sampler: PairSampler, augment: AugmentSettings, objective: Objective,
                 input_order: str, seed: int, epoch: int, indices: Sequence[int]) -> None:
        self.sampler = sampler
        self.augment = augment
        self.objective = objective
        self.input_order = input_order
        self.seed = seed
        self.epoch = epoch
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> Dict[str, torch.Tensor]:
        index = self.indices[item]
        failures = []
        for attempt in range(MAX_ATTEMPTS):
            pair = self.sampler.pair(self.seed, self.epoch, index, attempt)
            try:
                template = pair.template[0].frames.read(pair.template[1])
                search = pair.search[0].frames.read(pair.search[1])
            except FrameError as error:
                failures.append(str(error))
                continue
            crops = make_crops(template, pair.template[0].boxes[pair.template[1]],
                               search, pair.search[0].boxes[pair.search[1]], self.augment,
                               pair_rng(self.seed, self.epoch, index, attempt, "augment"))
            sample = {
                "z": torch.from_numpy(to_blob(crops.template, input_order=self.input_order)[0]),
                "x": torch.from_numpy(to_blob(crops.search, input_order=self.input_order)[0]),
                "skipped": torch.tensor(len(failures)),
            }
            targets = self.objective.targets(
                crops.search_box_corner, pair.negative,
                pair_rng(self.seed, self.epoch, index, attempt, "targets"))
            sample.update({k: torch.from_numpy(v) for k, v in targets.items()})
            return sample
        raise FrameError(f"{MAX_ATTEMPTS} pairs in a row had unreadable frames, last: "
                         f"{failures[-1]}")
