"""Guidance combine as Triton kernels: one pass over (sample, block) tiles computing the guided value in float32
(and, when rescaling, each sample's Σ and Σ² of the conditional and guided values), then one pass applying the
rescale. Up to 8 references."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import triton
import triton.language as tl

from .guidance_combine import check_inputs

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MAX_REFS = 8
BLOCK = 1024


@triton.jit
def _combine_kernel(cond_ptr, refs_ptr, scales_ptr, out_ptr, stats_ptr, n, batch, R: tl.constexpr,
                    STATS: tl.constexpr, BLOCK: tl.constexpr):
    sample = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    c = tl.load(cond_ptr + sample * n + offs, mask=mask, other=0.0).to(tl.float32)
    total = 0.0
    for r in tl.static_range(R):
        total += tl.load(scales_ptr + r * batch + sample)
    out = (1.0 + total) * c
    for r in tl.static_range(R):
        s = tl.load(scales_ptr + r * batch + sample)
        ref = tl.load(refs_ptr + (r * batch + sample) * n + offs, mask=mask, other=0.0).to(tl.float32)
        out = out - s * ref
    tl.store(out_ptr + sample * n + offs, out, mask=mask)
    if STATS:
        tl.atomic_add(stats_ptr + sample * 4 + 0, tl.sum(c, axis=0))
        tl.atomic_add(stats_ptr + sample * 4 + 1, tl.sum(c * c, axis=0))
        tl.atomic_add(stats_ptr + sample * 4 + 2, tl.sum(out, axis=0))
        tl.atomic_add(stats_ptr + sample * 4 + 3, tl.sum(out * out, axis=0))


@triton.jit
def _rescale_kernel(out_ptr, stats_ptr, n, phi, BLOCK: tl.constexpr):
    sample = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    sc = tl.load(stats_ptr + sample * 4 + 0)
    sc2 = tl.load(stats_ptr + sample * 4 + 1)
    so = tl.load(stats_ptr + sample * 4 + 2)
    so2 = tl.load(stats_ptr + sample * 4 + 3)
    var_c = (sc2 - sc * sc / n) / (n - 1)  # unbiased, as torch.std
    var_o = (so2 - so * so / n) / (n - 1)
    ratio = tl.sqrt(var_c / var_o)
    out = tl.load(out_ptr + sample * n + offs, mask=mask, other=0.0)
    tl.store(out_ptr + sample * n + offs, phi * (out * ratio) + (1.0 - phi) * out, mask=mask)


def unsupported(cond: torch.Tensor, refs: Sequence[torch.Tensor], *args: object, **kwargs: object) -> str | None:
    if cond.dtype not in SUPPORTED_DTYPES:
        return f"dtype {cond.dtype} (supported: float32, float16, bfloat16)"
    if len(refs) > MAX_REFS:
        return f"{len(refs)} references (at most {MAX_REFS})"
    return None


def guidance_combine_triton(cond: torch.Tensor, refs: Sequence[torch.Tensor], scales: torch.Tensor,
                            rescale: float = 0.0) -> torch.Tensor:
    """Same contract as :func:`genloom.kernels.guidance_combine.guidance_combine`; computes in float32 and returns
    the conditional prediction's dtype."""
    check_inputs(cond, refs, scales)
    if cond.shape[0] == 0 or cond.numel() == 0:
        return cond.clone()
    b = cond.shape[0]
    n = cond.numel() // b
    c = cond.contiguous()
    stacked = torch.stack([r.to(cond.dtype) for r in refs]).contiguous()
    s = scales.to(device=cond.device, dtype=torch.float32).contiguous()
    out = torch.empty(cond.shape, device=cond.device, dtype=torch.float32)
    stats = torch.zeros(b, 4, device=cond.device, dtype=torch.float32)
    grid = (b, triton.cdiv(n, BLOCK))
    _combine_kernel[grid](c, stacked, s, out, stats, n, b, R=len(refs), STATS=rescale > 0, BLOCK=BLOCK)
    if rescale > 0:
        _rescale_kernel[grid](out, stats, n, float(rescale), BLOCK=BLOCK)
    return out.to(cond.dtype)
