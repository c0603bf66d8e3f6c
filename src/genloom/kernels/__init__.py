"""Compute kernels behind one dispatcher (:mod:`genloom.kernels.dispatch`): one module per operation with its
exact PyTorch reference and its faster forms. Declared here without importing torch; the built-in ``kernels``
plugin registers these specs, and third-party plugins add theirs through ``register_kernels``."""

from __future__ import annotations

from typing import Any

from ..engine.specs import KernelSpec


def _selective_scan_reference(*args: Any, **kwargs: Any) -> Any:
    from .selective_scan import selective_scan_reference

    return selective_scan_reference(*args, **kwargs)


def _selective_scan_chunked(*args: Any, **kwargs: Any) -> Any:
    from .selective_scan import selective_scan_chunked

    return selective_scan_chunked(*args, **kwargs)


def _selective_scan_triton(*args: Any, **kwargs: Any) -> Any:
    from .selective_scan_triton import selective_scan_triton

    return selective_scan_triton(*args, **kwargs)


def _selective_scan_unsupported(*args: Any, **kwargs: Any) -> str | None:
    from .selective_scan_triton import unsupported

    return unsupported(*args, **kwargs)


BUILTIN_KERNELS = (
    KernelSpec(name="selective_scan", reference=_selective_scan_reference, fast=_selective_scan_chunked,
               triton=_selective_scan_triton, supports=_selective_scan_unsupported,
               description="Mamba S6 selective scan (u, delta, A, B, C, D, z, delta_bias, delta_softplus, "
                           "return_last_state); fast form: chunked, ~2·√L vectorised steps"),
)
