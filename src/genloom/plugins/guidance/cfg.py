"""Classifier-free guidance as a branch-protocol policy.

The scale is stored as the Imagen/diffusers ``w`` (w = 1 is no guidance); the original Ho & Salimans form
(s = 0 is none, w = s + 1) and diffusers' ``ClassifierFreeGuidance`` configs are accepted on input. A schedule
maps the step to a strength s_i = w_i − 1, and the combination is ``(1 + s)·p_c − s·p_u`` — the same rule as
``p_u + w·(p_c − p_u)``, written in the operation order of the official VAR code so recorded runs are reproduced
bit for bit. Affine, so it is the same in every parameterisation; the optional std rescale is not, and works in
the model's native space or in x0 space.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ...engine.errors import InvalidRequest
from ...engine.guidance import BranchOutputs, BranchRequest, StepInfo
from ...kernels.dispatch import default_dispatcher
from .declarations import CFG_OPTIONS, FORMULATIONS, RESCALE_SPACES, SCHEDULE_OPTIONS, SCHEDULES, require_scale


def contrast(cond: torch.Tensor, reference: torch.Tensor, s: float, rescale: float = 0.0) -> torch.Tensor:
    """``(1 + s)·cond − s·reference``: CFG's rule in the official VAR operation order (so recorded runs stay bit
    for bit), optionally std-rescaled; every policy that guides away from a reference prediction (AG, LinearAG,
    autoguidance, GFCG's CFG term) combines through it — the ``guidance_combine`` kernel (fused on CUDA)."""
    scales = torch.full((1, cond.shape[0]), float(s), dtype=torch.float64)
    return default_dispatcher()("guidance_combine", cond, [reference], scales, rescale)


def implied_schedule(schedule: str | None, values: Mapping[str, Any]) -> str | None:
    """The schedule, named or implied by the options given: a window or power set without ``schedule`` selects
    its schedule (as diffusers' ``start``/``stop`` do), and one that the named schedule would ignore is an error
    rather than a silent no-op."""
    defaults = {o.name: o.default for o in CFG_OPTIONS}
    given = {n for n, v in values.items() if v is not None and v != defaults[n]}
    shaped = [kind for kind, names in SCHEDULE_OPTIONS.items() if given.intersection(names)]
    if schedule is None and len(shaped) == 1:
        return shaped[0]
    stray = [kind for kind in shaped if kind != schedule]
    if stray:
        named = ", ".join(n for kind in stray for n in SCHEDULE_OPTIONS[kind] if n in given)
        raise InvalidRequest(f"CFG option(s) {named} shape the {'/'.join(stray)} schedule, not schedule="
                             f"{schedule!r}: drop them or pass schedule= the one you mean.")
    return schedule


@dataclass(frozen=True)
class CFG:
    scale: float = 1.0
    schedule: str | None = None  # None: the paradigm's default (next-scale: linear ramp; diffusion: constant)
    start: float = 0.0
    stop: float = 1.0
    sigma_lo: float = 0.0
    sigma_hi: float = math.inf
    power: float = 1.0
    rescale: float = 0.0
    rescale_space: str = "native"
    name: str = "cfg"
    space: str = "affine"

    @classmethod
    def create(cls, scale: float | None = None, schedule: str | None = None, formulation: str = "imagen",
               start: float = 0.0, stop: float = 1.0, sigma_lo: float = 0.0, sigma_hi: float | None = None,
               power: float = 1.0, rescale: float = 0.0, rescale_space: str = "native") -> CFG:
        schedule = implied_schedule(schedule, {"start": start, "stop": stop, "sigma_lo": sigma_lo,
                                               "sigma_hi": sigma_hi, "power": power})
        sigma_hi = math.inf if sigma_hi is None else sigma_hi
        if formulation not in FORMULATIONS:
            raise InvalidRequest(f"formulation must be one of {FORMULATIONS}, got {formulation!r}.")
        if schedule is not None and schedule not in SCHEDULES:
            raise InvalidRequest(f"CFG schedule must be one of {SCHEDULES}, got {schedule!r}.")
        require_scale("cfg", scale, "w = 1 is no guidance; s = 0 with formulation=original")
        for name, value in (("guidance_scale", scale), ("start", start), ("stop", stop), ("power", power),
                            ("rescale", rescale), ("sigma_lo", sigma_lo)):
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidRequest(f"CFG {name} must be a finite number, got {value!r}.")
        if not 0.0 <= start <= stop <= 1.0:
            raise InvalidRequest(f"CFG step window needs 0 <= start <= stop <= 1, got start={start}, stop={stop}.")
        if not (sigma_lo >= 0 and sigma_hi > sigma_lo):
            raise InvalidRequest(f"CFG sigma window needs 0 <= sigma_lo < sigma_hi, got ({sigma_lo}, {sigma_hi}].")
        if power <= 0:
            raise InvalidRequest(f"CFG power (power-cosine schedule) must be > 0, got {power}.")
        if not 0.0 <= rescale <= 1.0:
            raise InvalidRequest(f"CFG rescale (phi) must lie in [0, 1], got {rescale}.")
        if rescale_space not in RESCALE_SPACES:
            raise InvalidRequest(f"rescale_space must be one of {RESCALE_SPACES}, got {rescale_space!r}.")
        w = scale + 1.0 if formulation == "original" else float(scale)
        return cls(scale=w, schedule=schedule, start=start, stop=stop, sigma_lo=sigma_lo, sigma_hi=sigma_hi,
                   power=power, rescale=rescale, rescale_space=rescale_space)

    @classmethod
    def from_diffusers(cls, config: Mapping[str, Any]) -> CFG:
        """A diffusers ``ClassifierFreeGuidance`` config (``guider_config.json``) → the same policy."""
        kind = config.get("_class_name", "ClassifierFreeGuidance")
        if kind != "ClassifierFreeGuidance":
            raise InvalidRequest(f"Cannot import diffusers guider {kind!r}; only ClassifierFreeGuidance maps to CFG.")
        if not config.get("enabled", True):
            return cls.create(scale=1.0)
        start, stop = float(config.get("start", 0.0)), float(config.get("stop", 1.0))
        return cls.create(scale=float(config.get("guidance_scale", 7.5)),
                          formulation="original" if config.get("use_original_formulation") else "imagen",
                          schedule="step_window" if (start, stop) != (0.0, 1.0) else "constant",
                          start=start, stop=stop, rescale=float(config.get("guidance_rescale", 0.0)))

    # --- the schedule ---------------------------------------------------------------------------------------
    def strength(self, info: StepInfo) -> float:
        """s_i = w_i − 1 at this evaluation."""
        s = self.scale - 1.0
        kind = self.schedule or ("linear" if info.cached else "constant")
        if kind == "constant":
            return s
        if kind == "linear":  # VAR's ramp over scales, official operation order
            return s * (info.step / (info.num_steps - 1)) if info.num_steps > 1 else s
        if kind == "step_window":
            on = math.floor(self.start * info.num_steps) <= info.step < math.floor(self.stop * info.num_steps)
            return s if on else 0.0
        if kind == "power_cosine":  # MDT/DiMR: 0 at pure noise, full strength at time 0
            return s * 0.5 * (1 - math.cos(math.pi * (1 - info.time) ** self.power))
        # sigma_window: on for sigma in (lo, hi], in the EDM sense sigma/alpha
        if info.sigma is None or info.alpha is None:
            raise InvalidRequest("CFG schedule 'sigma_window' needs a noise level; use it with diffusion models.")
        edm_sigma = float((info.sigma / info.alpha).flatten()[0])
        return s if self.sigma_lo < edm_sigma <= self.sigma_hi else 0.0

    # --- the branch protocol --------------------------------------------------------------------------------
    def init_state(self, batch_size: int) -> None:
        return None

    def request(self, info: StepInfo, state: None) -> list[BranchRequest]:
        # a cached (next-scale) model needs the unconditional rows from the first scale on, to fill their KV cache,
        # and up to the last scale whose strength uses them; after it (a step window's stop) they leave the caches
        # and cost nothing, and if no scale uses them (w = 1) they never run
        if info.cached:
            needed = any(self.strength(info.at_scale(k)) != 0.0 for k in range(info.step, info.num_steps))
        else:
            needed = self.strength(info) != 0.0
        if needed:
            return [BranchRequest("uncond", rows=torch.ones(info.batch_size, dtype=torch.bool), null=True)]
        return []

    def combine(self, info: StepInfo, outputs: BranchOutputs, state: None) -> torch.Tensor:
        cond = outputs["cond"]
        s = self.strength(info)
        if "uncond" not in outputs or s == 0.0:
            return cond
        if self.rescale > 0 and self.rescale_space == "x0":  # CFG is affine: combine the x̂0s, rescale there
            from ...engine.parameterisation import from_x0

            guided = contrast(outputs.x0("cond"), outputs.x0("uncond"), s, self.rescale)
            return from_x0(guided, outputs.x, outputs.info)
        return contrast(cond, outputs["uncond"], s, self.rescale)  # the rescale (if any) fused into the combination
