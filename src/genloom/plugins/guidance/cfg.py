"""Classifier-free guidance as an immutable policy: a scale, a schedule and a formulation.

Internally the scale is always the Imagen/diffusers ``w`` (w = 1 means no guidance); the original
Ho & Salimans form (s = 0 means none, w = s + 1) is accepted on input. Schedules: ``constant`` (w at every
step) and ``linear`` (VAR: w_k = 1 + (w − 1)·k/(K − 1), no guidance at the first scale, w at the last).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ...engine.errors import InvalidRequest

SCHEDULES = ("constant", "linear")
FORMULATIONS = ("imagen", "original")


@dataclass(frozen=True)
class CFG:
    scale: float = 1.0
    schedule: str | None = None  # None: the sampler's default for its paradigm
    name: str = "cfg"

    @classmethod
    def create(cls, scale: float | None = None, schedule: str | None = None,
               formulation: str = "imagen") -> CFG:
        if formulation not in FORMULATIONS:
            raise InvalidRequest(f"formulation must be one of {FORMULATIONS}, got {formulation!r}.")
        if schedule is not None and schedule not in SCHEDULES:
            raise InvalidRequest(f"CFG schedule must be one of {SCHEDULES}, got {schedule!r}.")
        if scale is None:
            raise InvalidRequest("guidance='cfg' needs guidance_scale (w = 1 is no guidance).")
        if not math.isfinite(scale):
            raise InvalidRequest(f"guidance_scale must be finite, got {scale}.")
        w = scale + 1.0 if formulation == "original" else scale
        return cls(scale=w, schedule=schedule)

    def strength(self, default_schedule: str = "constant") -> Callable[[int, int], float]:
        """Per-step strength t = w − 1 (original formulation) as ``f(step, num_steps)``; the linear schedule
        uses the official VAR operation order, so recorded runs are reproduced bit for bit."""
        from ...samplers.next_scale import linear_ramp

        t = self.scale - 1.0
        if (self.schedule or default_schedule) == "linear":
            return linear_ramp(t)
        return lambda step, num_steps: t
