"""The built-in compute kernels (declared in :mod:`genloom.kernels`), registered like any plugin's."""

from __future__ import annotations

from ...engine.hookspecs import hookimpl
from ...kernels import BUILTIN_KERNELS

GENLOOM_PLUGIN_API = "1.0"


@hookimpl
def register_kernels(register) -> None:  # type: ignore[no-untyped-def]
    for spec in BUILTIN_KERNELS:
        register(spec)
