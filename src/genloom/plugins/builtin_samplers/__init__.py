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


@hookimpl
def register_samplers(register) -> None:  # type: ignore[no-untyped-def]
    register(SamplerSpec(name="one-step", factory=_one_step, paradigm=Paradigm.ONE_STEP,
                         description="a single forward of a one-step generator", default_steps=1))
    register(SamplerSpec(name="next-scale", factory=_next_scale, paradigm=Paradigm.NEXT_SCALE,
                         description="VAR-style next-scale prediction with a KV cache (options: top_k, top_p, "
                                     "more_smooth)", default_steps=1))
