"""Built-in guidance policies. CFG here; AG/LinearAG and GFCG come with their own issue."""

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
        parameters={"schedule": "model default (next-scale: linear ramp over scales; diffusion: constant)",
                    "formulation": "imagen (w = 1 is no guidance) | original (s = 0 is no guidance)"},
        description="classifier-free guidance: p_u + w·(p_c − p_u), with constant or linear-ramp schedules"))
