"""Nearest codebook entry as a Triton kernel: a block of vectors per program, the codebook streamed in blocks,
squared distances Σ(z − e)² in float32 (no ‖z‖²+‖e‖²−2z·e cancellation), running minimum with the lower index on
ties — the official tie rule. Near-ties can resolve differently from the reference's rounding."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .vq_nearest import _check

BLOCK_N, BLOCK_V = 16, 32


@triton.jit
def _vq_kernel(z_ptr, e_ptr, out_ptr, N, V, C, BN: tl.constexpr, BV: tl.constexpr, BC: tl.constexpr):
    rows = tl.program_id(0) * BN + tl.arange(0, BN)
    cols = tl.arange(0, BC)
    z = tl.load(z_ptr + rows[:, None] * C + cols[None, :], mask=(rows[:, None] < N) & (cols[None, :] < C),
                other=0.0).to(tl.float32)
    best = tl.full((BN,), float("inf"), tl.float32)
    best_idx = tl.zeros((BN,), tl.int64)
    for start in range(0, V, BV):
        codes = start + tl.arange(0, BV)
        e = tl.load(e_ptr + codes[:, None] * C + cols[None, :], mask=(codes[:, None] < V) & (cols[None, :] < C),
                    other=0.0).to(tl.float32)
        diff = z[:, None, :] - e[None, :, :]
        d = tl.sum(diff * diff, axis=2)
        d = tl.where(codes[None, :] < V, d, float("inf"))
        block_min = tl.min(d, axis=1)
        block_idx = tl.argmin(d, axis=1, tie_break_left=True).to(tl.int64) + start
        better = block_min < best  # strict: an equal later code never replaces an earlier one
        best_idx = tl.where(better, block_idx, best_idx)
        best = tl.where(better, block_min, best)
    tl.store(out_ptr + rows, best_idx, mask=rows < N)


def unsupported(z: torch.Tensor, *args: object, **kwargs: object) -> str | None:
    if z.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        return f"dtype {z.dtype}"
    if z.dim() == 2 and z.shape[1] > 256:
        return f"{z.shape[1]} channels (at most 256)"
    return None


def vq_nearest_triton(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    _check(z, codebook)
    n, c = z.shape
    out = torch.empty(n, dtype=torch.int64, device=z.device)
    _vq_kernel[(triton.cdiv(n, BLOCK_N),)](z.contiguous(), codebook.contiguous(), out, n, codebook.shape[0], c,
                                           BN=BLOCK_N, BV=BLOCK_V, BC=triton.next_power_of_2(c))
    return out
