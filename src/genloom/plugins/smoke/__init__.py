"""The ``smoke`` model: a tiny one-step generator with fixed random weights, embedded as an asset.

It exists to exercise the whole engine path offline (plugin → registry → weights → sampler → PNGs) before
the real families' trained defaults land. Its images are textures, not pictures of anything.
"""

from __future__ import annotations

from typing import Any

from ...engine.hookspecs import hookimpl
from ...engine.specs import ModelSpec, Paradigm

GENLOOM_PLUGIN_API = "1.0"
NUM_CLASSES = 10
ASSET = "asset:smoke.safetensors"


def _build(options: Any) -> Any:
    from .model import build

    return build(options)


@hookimpl
def register_models(register) -> None:  # type: ignore[no-untyped-def]
    register(
        ModelSpec(
            name="smoke",
            factory=_build,
            paradigm=Paradigm.ONE_STEP,
            description="engine smoke test: tiny one-step generator with fixed random weights (not trained)",
            num_classes=NUM_CLASSES,
            image_size=32,
            class_names=tuple(f"class{i}" for i in range(NUM_CLASSES)),
            default_weights=ASSET,
            default_sampler="one-step",
        )
    )
