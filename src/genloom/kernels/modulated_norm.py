"""Modulated LayerNorm — ``LN(x; weight, bias)·(1 + scale) + shift`` with a per-sample shift and scale — the
adaLN of VAR's blocks and head and LaMamba's adaLN-Zero sites. The reference is the official operation order
(``layer_norm``, then ``mul(1 + scale)``, then ``add(shift)``); the Triton kernel does one row per program, in
float32, and writes the input dtype."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..engine.errors import InvalidRequest


def _check(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> None:
    if x.dim() < 2:
        raise InvalidRequest(f"modulated_layer_norm: x must be (B, ..., C), got {tuple(x.shape)}.")
    b, c = x.shape[0], x.shape[-1]
    for name, t in (("shift", shift), ("scale", scale)):
        if t.shape[0] != b or t.shape[-1] != c or t.numel() != b * c:
            raise InvalidRequest(f"modulated_layer_norm: {name} must hold one ({c},) vector per sample of x "
                                 f"{tuple(x.shape)} (e.g. (B, 1, C)), got {tuple(t.shape)}.")


def modulated_layer_norm(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, weight: torch.Tensor | None = None,
                         bias: torch.Tensor | None = None, eps: float = 1e-6) -> torch.Tensor:
    """Reference: LN over the last axis, then ``·(1 + scale) + shift`` broadcast per sample."""
    _check(x, shift, scale)
    view = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
    y = F.layer_norm(x, (x.shape[-1],), weight, bias, eps)
    return y.mul(scale.reshape(view).add(1)).add_(shift.reshape(view))
