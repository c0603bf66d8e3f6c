"""Registers the engine's own sampling loops (one per paradigm, several for diffusion)."""

from __future__ import annotations

from ...engine.hookspecs import hookimpl
from ...engine.specs import Paradigm, SamplerSpec

GENLOOM_PLUGIN_API = "1.0"


def _one_step(**options: object) -> object:
    from ...samplers.one_step import OneStepSampler

    if options:
        raise TypeError(f"the one-step sampler takes no options, got {sorted(options)}")
    return OneStepSampler()


def _next_scale(**options: object) -> object:
    from ...samplers.next_scale import NextScaleSampler

    return NextScaleSampler(**options)  # type: ignore[arg-type]


def _diffusers(recipe: str):  # type: ignore[no-untyped-def]
    def factory(**options: object) -> object:
        from ...samplers.diffusion import DiffusionSampler

        return DiffusionSampler(recipe, **options)

    return factory


def _dpm_solver_fast(**options: object) -> object:
    from ...samplers.dpm_solver_fast import DPMSolverFast

    return DPMSolverFast(**options)  # type: ignore[arg-type]


DIFFUSERS_SAMPLERS = {
    "ddpm": "DDPM ancestral sampling (learned variance used when the model has it)",
    "ddim": "DDIM, deterministic (eta 0)",
    "dpm++2m": "DPM-Solver++ multistep, order 2",
    "dpm++3s": "DPM-Solver++ single-step, order 3",
    "euler": "Euler (Karras-style sigmas off by default)",
    "heun": "Heun, two evaluations per step but the last",
    "unipc": "UniPC multistep",
    "flow-euler": "flow-matching Euler (flow-prediction models only)",
}


@hookimpl
def register_samplers(register) -> None:  # type: ignore[no-untyped-def]
    for name, what in DIFFUSERS_SAMPLERS.items():
        register(SamplerSpec(name=name, factory=_diffusers(name), paradigm=Paradigm.DIFFUSION,
                             description=f"{what}; diffusers scheduler built from the model's noise schedule "
                                         f"(options: scheduler config overrides)", default_steps=25))
    register(SamplerSpec(name="dpm-solver-fast", factory=_dpm_solver_fast, paradigm=Paradigm.DIFFUSION,
                         description="the official DiMR/U-ViT DPM-Solver: order 3, 'fast' plan, time-uniform grid "
                                     "(option: t_end)", default_steps=25))
    register(SamplerSpec(name="one-step", factory=_one_step, paradigm=Paradigm.ONE_STEP,
                         description="a single forward of a one-step generator", default_steps=1))
    register(SamplerSpec(name="next-scale", factory=_next_scale, paradigm=Paradigm.NEXT_SCALE,
                         description="VAR-style next-scale prediction with a KV cache (options: top_k, top_p, "
                                     "more_smooth)", default_steps=1))
