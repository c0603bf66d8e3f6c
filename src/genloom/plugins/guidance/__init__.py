"""Built-in guidance policies, driven through the branch protocol (:mod:`genloom.engine.guidance`): CFG and
Adaptive Guidance, LinearAG, autoguidance, gradient-free classifier guidance."""

from __future__ import annotations

from typing import Any

from ...engine.hookspecs import hookimpl
from ...engine.specs import CommandSpec, GuidanceSpec, Paradigm
from .declarations import AG_OPTIONS, ATG_OPTIONS, CFG_OPTIONS, GFCG_OPTIONS, LINEAR_AG_OPTIONS

GENLOOM_PLUGIN_API = "1.0"


def _cfg(**params: Any) -> Any:
    from .cfg import CFG

    return CFG.create(**params)


def _adaptive(**params: Any) -> Any:
    from .adaptive import AdaptiveGuidance

    return AdaptiveGuidance.create(**params)


def _autoguidance(**params: Any) -> Any:
    from .autoguidance import AutoGuidance

    return AutoGuidance.create(**params)


def _gfcg(**params: Any) -> Any:
    from .gfcg import GFCG

    return GFCG.create(**params)


def _linear_ag(**params: Any) -> Any:
    from .linear_ag import LinearAG

    return LinearAG.create(**params)


@hookimpl
def register_guidance(register) -> None:  # type: ignore[no-untyped-def]
    register(GuidanceSpec(
        name="cfg", factory=_cfg, paradigms=frozenset({Paradigm.DIFFUSION, Paradigm.NEXT_SCALE}),
        requires=frozenset({"null_class"}),
        options=CFG_OPTIONS,
        description="classifier-free guidance p_u + w·(p_c − p_u): constant, window, linear-ramp and power-cosine "
                    "schedules, optional rescale"))
    register(GuidanceSpec(
        name="adaptive", factory=_adaptive, paradigms=frozenset({Paradigm.DIFFUSION, Paradigm.NEXT_SCALE}),
        requires=frozenset({"null_class"}), options=AG_OPTIONS,
        description="Adaptive Guidance: CFG per sample until cos(cond, uncond) > threshold, then conditional-only "
                    "(the unconditional rows stop costing NFE)"))
    register(GuidanceSpec(
        name="autoguidance", factory=_autoguidance, paradigms=frozenset({Paradigm.DIFFUSION, Paradigm.NEXT_SCALE}),
        options=ATG_OPTIONS, context=True,
        description="autoguidance: p_guide + w·(p_c − p_guide) with a weaker checkpoint of the same model "
                    "(guide_weights=)"))
    register(GuidanceSpec(
        name="gfcg", factory=_gfcg, paradigms=frozenset({Paradigm.DIFFUSION, Paradigm.NEXT_SCALE}),
        options=GFCG_OPTIONS, context=True,
        description="gradient-free classifier guidance: away from the class a classifier finds each sample most "
                    "confused with, weighted by that confusion; with CFG (cfg_scale=) or a guide model; on "
                    "next-scale models chosen once from the preview at choose_scale"))
    register(GuidanceSpec(
        name="linear-ag", factory=_linear_ag, paradigms=frozenset({Paradigm.DIFFUSION}),
        requires=frozenset({"null_class"}), options=LINEAR_AG_OPTIONS, context=True,
        description="LinearAG: in the first half every other unconditional pass is an affine combination of past "
                    "estimates (a calibrated table), the second half conditional-only"))


@hookimpl
def register_commands(register) -> None:  # type: ignore[no-untyped-def]
    from .cli import calibrate_linear_ag

    register(CommandSpec(name="linear-ag", command=calibrate_linear_ag, group="calibrate",
                         description="fit a LinearAG table for a model, sampler, step count and scale"))
