"""Built-in guidance policies, driven through the branch protocol (:mod:`genloom.engine.guidance`). CFG here;
AG/LinearAG and GFCG come with their own issue."""

from __future__ import annotations

from typing import Any

from ...engine.hookspecs import hookimpl
from ...engine.specs import GuidanceSpec, Paradigm

GENLOOM_PLUGIN_API = "1.0"


def _cfg(**params: Any) -> Any:
    from .cfg import CFG

    return CFG.create(**params)


@hookimpl
def register_guidance(register) -> None:  # type: ignore[no-untyped-def]
    register(GuidanceSpec(
        name="cfg", factory=_cfg, paradigms=frozenset({Paradigm.DIFFUSION, Paradigm.NEXT_SCALE}),
        requires=frozenset({"null_class"}),
        parameters={
            "schedule": "constant | linear (VAR ramp over scales) | step_window | sigma_window | power_cosine; "
                        "default: linear for next-scale models, constant for diffusion",
            "formulation": "imagen (w = 1 is no guidance) | original (s = 0 is no guidance, w = s + 1)",
            "start": "step_window: first guided fraction of the steps (diffusers semantics), default 0",
            "stop": "step_window: end of the guided fraction, default 1",
            "sigma_lo": "sigma_window: guidance on for sigma in (sigma_lo, sigma_hi] (EDM sigma)",
            "sigma_hi": "sigma_window: upper bound, default inf",
            "power": "power_cosine: exponent p of w(t) = 1 + (w − 1)·(1 − cos(π(1 − t)^p))/2, default 1",
            "rescale": "guidance rescale phi in [0, 1] (Lin et al. 2023), default 0",
            "rescale_space": "native | x0: where the rescale's std is measured",
        },
        description="classifier-free guidance p_u + w·(p_c − p_u): constant, window, linear-ramp and power-cosine "
                    "schedules, optional rescale"))
