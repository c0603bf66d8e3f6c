"""Modulated LayerNorm as a Triton kernel: one program per row of C features, statistics in float32."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .modulated_norm import _check

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MAX_FEATURES = 16384


@triton.jit
def _modulated_ln_kernel(x_ptr, shift_ptr, scale_ptr, w_ptr, b_ptr, out_ptr, rows_per_sample, C, eps,
                         HAS_AFFINE: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    sample = row // rows_per_sample
    cols = tl.arange(0, BLOCK)
    mask = cols < C
    x = tl.load(x_ptr + row * C + cols, mask=mask, other=0.0).to(tl.float32)
    mean = tl.sum(x, axis=0) / C
    diff = tl.where(mask, x - mean, 0.0)
    var = tl.sum(diff * diff, axis=0) / C
    y = diff / tl.sqrt(var + eps)
    if HAS_AFFINE:
        w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        b = tl.load(b_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        y = y * w + b
    sc = tl.load(scale_ptr + sample * C + cols, mask=mask, other=0.0).to(tl.float32)
    sh = tl.load(shift_ptr + sample * C + cols, mask=mask, other=0.0).to(tl.float32)
    y = y * (1.0 + sc) + sh
    tl.store(out_ptr + row * C + cols, y, mask=mask)


def unsupported(x: torch.Tensor, *args: object, **kwargs: object) -> str | None:
    if x.dtype not in SUPPORTED_DTYPES:
        return f"dtype {x.dtype} (supported: float32, float16, bfloat16)"
    if x.shape[-1] > MAX_FEATURES:
        return f"{x.shape[-1]} features (at most {MAX_FEATURES} per row)"
    return None


def modulated_layer_norm_triton(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                                weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                                eps: float = 1e-6) -> torch.Tensor:
    """Same contract as :func:`genloom.kernels.modulated_norm.modulated_layer_norm`."""
    _check(x, shift, scale)
    c = x.shape[-1]
    xs = x.contiguous()
    rows = xs.numel() // c
    out = torch.empty_like(xs)
    affine = weight is not None
    w = weight.contiguous() if affine else xs
    b = bias.contiguous() if bias is not None else (torch.zeros_like(weight) if affine else xs)
    _modulated_ln_kernel[(rows,)](xs, shift.contiguous(), scale.contiguous(), w, b, out, rows // x.shape[0], c,
                                  float(eps), HAS_AFFINE=affine, BLOCK=triton.next_power_of_2(c))
    return out
