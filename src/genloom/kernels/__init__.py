"""Compute kernels behind one dispatcher (:mod:`genloom.kernels.dispatch`): one module per operation with its
exact PyTorch reference and its faster forms. Declared here without importing torch or Triton; the built-in
``kernels`` plugin registers these specs, and third-party plugins add theirs through ``register_kernels``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ..engine.specs import KernelSpec


def _lazy(module: str, name: str) -> Callable[..., Any]:
    """A function that imports ``genloom.kernels.<module>.<name>`` on its first call (Triton only when used)."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(f"{__name__}.{module}"), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


BUILTIN_KERNELS = (
    KernelSpec(name="selective_scan", reference=_lazy("selective_scan", "selective_scan_reference"),
               fast=_lazy("selective_scan", "selective_scan_chunked"),
               triton=_lazy("selective_scan_triton", "selective_scan_triton"),
               supports=_lazy("selective_scan_triton", "unsupported"),
               description="Mamba S6 selective scan (u, delta, A, B, C, D, z, delta_bias, delta_softplus, "
                           "return_last_state); fast form: chunked, ~2·√L vectorised steps"),
    KernelSpec(name="modulated_layer_norm", reference=_lazy("modulated_norm", "modulated_layer_norm"),
               triton=_lazy("modulated_norm_triton", "modulated_layer_norm_triton"),
               supports=_lazy("modulated_norm_triton", "unsupported"),
               description="LN(x; weight, bias)·(1 + scale) + shift, per-sample shift/scale (VAR's and LaMamba's "
                           "adaLN)"),
    KernelSpec(name="guidance_combine", reference=_lazy("guidance_combine", "guidance_combine"),
               triton=_lazy("guidance_combine_triton", "guidance_combine_triton"),
               supports=_lazy("guidance_combine_triton", "unsupported"),
               description="(1 + Σ s_r)·cond − Σ s_r·ref_r with per-sample strengths, optional std rescale "
                           "(every guidance policy's combination)"),
    KernelSpec(name="vq_nearest", reference=_lazy("vq_nearest", "vq_nearest"),
               triton=_lazy("vq_nearest_triton", "vq_nearest_triton"),
               supports=_lazy("vq_nearest_triton", "unsupported"),
               description="nearest codebook entry of (N, C) vectors, first minimum on ties (VAR's VQVAE)"),
)
