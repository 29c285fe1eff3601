"""Learning-rate schedules of the references: one learning rate per epoch.

Two shapes cover them. pysot and NanoTrack warm up with pysot's ``step`` schedule for
``warmup_epochs`` epochs (``warmup_lr_start`` multiplied by a constant factor every
``warmup_step`` epochs, reaching ``warmup_lr_end`` one step after the warm-up), then follow the
``log`` schedule: ``lr_start`` to ``lr_end`` evenly in log space, both ends included.
siamfc-pytorch has no warm-up and decays ``exponential``-ly: torch's ``ExponentialLR`` with
``gamma = (lr_end / lr_start) ** (1 / epochs)`` stepped once per epoch, so ``lr_end`` would be
reached at epoch ``epochs``, one past the last.

The learning rate is the one of parameter groups at multiplier 1; the trainer scales it for
layers trained at another multiple.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..config import check_limits

#: Decay shapes after the warm-up.
KINDS = ("log", "exponential")

_LIMITS = {
    "epochs": "positive",
    "lr_start": "positive",
    "lr_end": "positive",
    "warmup_epochs": "non-negative",
    "warmup_lr_start": "positive",
    "warmup_lr_end": "positive",
    "warmup_step": "positive",
}


@dataclass(frozen=True)
class ScheduleSettings:
    """The learning rate of every epoch of a training run (part of a training recipe).

    ``epochs`` counts the warm-up epochs; the decay (``kind``) spans the rest. The defaults are
    pysot's ``siamrpn_alex_dwxcorr_16gpu``; the class methods give each reference's schedule.
    """

    epochs: int = 50
    kind: str = "log"
    lr_start: float = 0.01
    lr_end: float = 0.0005
    warmup_epochs: int = 5
    warmup_lr_start: float = 0.005
    warmup_lr_end: float = 0.01
    warmup_step: int = 1

    def __post_init__(self) -> None:
        check_limits(self, _LIMITS)
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.warmup_epochs >= self.epochs:
            raise ValueError(
                f"warmup_epochs must be less than epochs ({self.epochs}), got {self.warmup_epochs}"
            )
        if self.warmup_epochs and self.warmup_step > self.warmup_epochs:
            raise ValueError(
                f"warmup_step must be at most warmup_epochs ({self.warmup_epochs}), "
                f"got {self.warmup_step}"
            )

    @classmethod
    def siamfc(cls) -> "ScheduleSettings":
        """siamfc-pytorch: 1e-2 decaying exponentially towards 1e-5 over 50 epochs."""
        return cls(epochs=50, kind="exponential", lr_start=1e-2, lr_end=1e-5, warmup_epochs=0)

    @classmethod
    def pysot_alex(cls) -> "ScheduleSettings":
        """pysot ``siamrpn_alex_dwxcorr_16gpu``: warm-up 0.005 -> 0.01 in 5 epochs, then
        log 0.01 -> 0.0005 over the remaining 45 of 50."""
        return cls()

    @classmethod
    def pysot_r50(cls) -> "ScheduleSettings":
        """pysot ``siamrpn_r50_l234_dwxcorr_8gpu``: warm-up 0.001 -> 0.005 in 5 epochs, then
        log 0.005 -> 0.0005 over the remaining 15 of 20."""
        return cls(epochs=20, lr_start=0.005, lr_end=0.0005,
                   warmup_lr_start=0.001, warmup_lr_end=0.005)

    @classmethod
    def nanotrack(cls) -> "ScheduleSettings":
        """NanoTrack ``configv2.yaml``: warm-up 0.001 -> 0.005 in 5 epochs, then log
        0.005 -> 0.0005 over the remaining 45 of 50."""
        return cls(epochs=50, lr_start=0.005, lr_end=0.0005,
                   warmup_lr_start=0.001, warmup_lr_end=0.005)

    def with_epochs(self, epochs: int) -> "ScheduleSettings":
        """This schedule over ``epochs`` epochs (``--epochs``), as the reference's scheduler
        builds it for another epoch count: the same warm-up, then the decay over the rest.
        A run too short for the warm-up (where the references fail) keeps one decay epoch:
        the warm-up is cut to ``epochs - 1`` epochs."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be an int > 0, got {epochs!r}")
        warmup = min(self.warmup_epochs, epochs - 1)
        return dataclasses.replace(self, epochs=epochs, warmup_epochs=warmup,
                                   warmup_step=max(1, min(self.warmup_step, warmup)))

    def finetune(self) -> "ScheduleSettings":
        """The same number of epochs at a constant rate: the one of this schedule's last epoch,
        without warm-up (continuing from trained weights, a peak rate would undo them)."""
        final = learning_rate(self, self.epochs - 1)
        return dataclasses.replace(self, kind="log", lr_start=final, lr_end=final,
                                   warmup_epochs=0)


def learning_rate(settings: ScheduleSettings, epoch: int) -> float:
    """The learning rate in effect during ``epoch`` (0-based, in ``[0, settings.epochs)``)."""
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < settings.epochs:
        raise ValueError(f"epoch must be an int in [0, {settings.epochs}), got {epoch!r}")
    if epoch < settings.warmup_epochs:
        steps = settings.warmup_epochs // settings.warmup_step
        fraction = (epoch // settings.warmup_step) / steps
        return settings.warmup_lr_start * (settings.warmup_lr_end / settings.warmup_lr_start) ** fraction
    index = epoch - settings.warmup_epochs
    length = settings.epochs - settings.warmup_epochs
    if settings.kind == "exponential":
        fraction = index / length
    else:
        fraction = index / (length - 1) if length > 1 else 0.0
    return settings.lr_start * (settings.lr_end / settings.lr_start) ** fraction
