"""Learning-rate schedules: linear warmup, then exponential (DeePMD-style) or cosine decay.

A schedule is a pure function of the optimizer step, so it is exactly reproduced on resume and can
drive both ``torch.optim.lr_scheduler.LambdaLR`` and the DeePMD loss prefactors
(:class:`~lam.train.losses.EnergyForceStressLoss`), which follow the *decay* part only: warmup leaves
the prefactors at their start values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class LRSchedule:
    """Multiplier of the base learning rate as a function of the optimizer step.

    Args:
        kind: ``"exp"``: ``lr = lr0 * (final_ratio)^(t / decay_steps)`` (DeePMD's ``exp`` with
            ``stop_lr = final_ratio * lr0`` reached at ``decay_steps``); ``"cosine"``: half cosine from
            ``lr0`` to ``final_ratio * lr0`` over ``decay_steps``; ``"constant"``: no decay.
        warmup_steps: linear warmup from ``lr0 / warmup_steps`` to ``lr0`` over these steps.
        decay_steps: steps (after warmup) over which the decay runs; the LR then stays at its final value.
        final_ratio: ``stop_lr / lr0`` in (0, 1].
    """

    kind: Literal["exp", "cosine", "constant"] = "exp"
    warmup_steps: int = 0
    decay_steps: int = 1000
    final_ratio: float = 0.01

    def __post_init__(self) -> None:
        if self.kind not in ("exp", "cosine", "constant"):
            raise ValueError(f"lr schedule kind {self.kind!r}: expected 'exp', 'cosine' or 'constant'")
        if not 0.0 < self.final_ratio <= 1.0:
            raise ValueError(f"lr schedule final_ratio {self.final_ratio}: must be in (0, 1]")
        if self.warmup_steps < 0 or self.decay_steps < 1:
            raise ValueError(
                f"lr schedule: warmup_steps {self.warmup_steps} must be >= 0 and "
                f"decay_steps {self.decay_steps} >= 1"
            )

    def decay(self, step: int) -> float:
        """The decay factor ``lr / lr0`` ignoring warmup (1 at the end of warmup), in (0, 1]."""
        progress = min(max(step - self.warmup_steps, 0) / self.decay_steps, 1.0)
        if self.kind == "exp":
            return self.final_ratio**progress
        if self.kind == "cosine":
            return self.final_ratio + (1.0 - self.final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    def warmup(self, step: int) -> float:
        """The warmup factor in (0, 1]: ``(step + 1) / warmup_steps`` during warmup, then 1."""
        if step >= self.warmup_steps:
            return 1.0
        return (step + 1) / self.warmup_steps

    def __call__(self, step: int) -> float:
        """Total multiplier of the base LR at ``step`` (what ``LambdaLR`` expects)."""
        return self.warmup(step) * self.decay(step)
