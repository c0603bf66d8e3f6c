"""Built-in guidance policies, driven through the branch protocol (:mod:`genloom.engine.guidance`). CFG here;
AG/LinearAG and GFCG come with their own issue."""

from __future__ import annotations

from typing import Any

from ...engine.hookspecs import hookimpl
from ...engine.specs import GuidanceSpec, Paradigm
from .declarations import CFG_OPTIONS

GENLOOM_PLUGIN_API = "1.0"


def _cfg(**params: Any) -> Any:
    from .cfg import CFG

    return CFG.create(**params)


@hookimpl
def register_guidance(register) -> None:  # type: ignore[no-untyped-def]
    register(GuidanceSpec(
        name="cfg", factory=_cfg, paradigms=frozenset({Paradigm.DIFFUSION, Paradigm.NEXT_SCALE}),
        requires=frozenset({"null_class"}),
        options=CFG_OPTIONS,
        description="classifier-free guidance p_u + w·(p_c − p_u): constant, window, linear-ramp and power-cosine "
                    "schedules, optional rescale"))
