"""Registers the engine's own sampling loops (one per paradigm, several for diffusion)."""

from __future__ import annotations

from ...engine.hookspecs import hookimpl
from ...engine.options import Option
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


TIMESTEP_SPACING = Option("timestep_spacing", "str", None, "where the steps sit on the training horizon "
                          "(diffusers; trailing reaches pure noise)", choices=("linspace", "leading", "trailing"))
KARRAS = Option("use_karras_sigmas", "bool", None, "Karras et al.'s sigma spacing")
THRESHOLDING = Option("thresholding", "bool", None, "dynamic thresholding of x̂0 (Imagen)")
#: the scheduler settings declared per recipe (others pass through to the scheduler, which checks them)
DIFFUSERS_OPTIONS = {
    "ddpm": (TIMESTEP_SPACING, THRESHOLDING),
    "ddim": (TIMESTEP_SPACING, THRESHOLDING),
    "dpm++2m": (TIMESTEP_SPACING, KARRAS, THRESHOLDING),
    "dpm++3s": (KARRAS, THRESHOLDING),
    "euler": (TIMESTEP_SPACING, KARRAS),
    "heun": (TIMESTEP_SPACING, KARRAS),
    "unipc": (TIMESTEP_SPACING, KARRAS, THRESHOLDING),
    "flow-euler": (KARRAS, Option("shift", "float", None, "timestep shift of flow-matching schedules", minimum=0.0)),
}
NEXT_SCALE_OPTIONS = (
    Option("top_k", "int", 0, "keep the k most likely codes per token (0: all)", minimum=0),
    Option("top_p", "float", None, "nucleus sampling: keep the codes within this probability mass",
           minimum=0.0, maximum=1.0, above_minimum=True),
    Option("more_smooth", "bool", False, "Gumbel-softmax smoothing of the next-scale input (VAR's more_smooth)"),
    Option("draws", "str", "auto", "where codes are drawn: host (CPU, the official numbers), device (inverse CDF "
           "from per-image device streams, no transfer), auto (device off the CPU)",
           choices=("auto", "host", "device")),
)
DPM_SOLVER_FAST_OPTIONS = (
    Option("t_end", "float", 1e-3, "last time of the solver's grid", minimum=0.0, maximum=0.5, above_minimum=True),
)


@hookimpl
def register_samplers(register) -> None:  # type: ignore[no-untyped-def]
    for name, what in DIFFUSERS_SAMPLERS.items():
        register(SamplerSpec(name=name, factory=_diffusers(name), paradigm=Paradigm.DIFFUSION,
                             description=f"{what}; diffusers scheduler built from the model's noise schedule "
                                         f"(other scheduler config keys pass through)", default_steps=25,
                             options=DIFFUSERS_OPTIONS[name], open_options=True))
    register(SamplerSpec(name="dpm-solver-fast", factory=_dpm_solver_fast, paradigm=Paradigm.DIFFUSION,
                         description="the official DiMR/U-ViT DPM-Solver: order 3, 'fast' plan, time-uniform grid",
                         default_steps=25, options=DPM_SOLVER_FAST_OPTIONS))
    register(SamplerSpec(name="one-step", factory=_one_step, paradigm=Paradigm.ONE_STEP,
                         description="a single forward of a one-step generator", default_steps=1))
    register(SamplerSpec(name="next-scale", factory=_next_scale, paradigm=Paradigm.NEXT_SCALE,
                         description="VAR-style next-scale prediction with a KV cache; steps = the model's scales",
                         default_steps=1, options=NEXT_SCALE_OPTIONS))
