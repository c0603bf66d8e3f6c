"""Mamba's selective scan (S6): the exact sequential reference and a chunked PyTorch form that is fast on CPU.

Semantics (``selective_scan_ref`` of state-spaces/mamba, re-derived from the spec): Δ = delta (+ delta_bias),
softplus if asked (PyTorch's threshold 20); Ā = exp(Δ·A); h_l = Ā_l·h_{l−1} + Δ_l·B_l·u_l with h_{−1} = 0;
y_l = Σ_n C_l,n·h_l,n; y += D·u; y *= SiLU(z); y cast to u's dtype; the last state h_{L−1} in float32.
B and C are time-invariant (D, N), shared (batch, N, L) or grouped (batch, G, N, L): group g serves the
contiguous channels g·D/G … (g+1)·D/G − 1. All arithmetic is float32 whatever the input dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..engine.errors import InvalidRequest


@dataclass
class ScanOperands:
    """float32 operands, B and C broadcastable to (batch, D, N, L)."""

    u: torch.Tensor          # (b, d, l)
    delta: torch.Tensor      # (b, d, l), bias and softplus applied
    A: torch.Tensor          # (d, n)
    B: torch.Tensor          # (b|1, d|1, n, l|1)
    C: torch.Tensor
    dtype: torch.dtype


def _check(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
           D: torch.Tensor | None, z: torch.Tensor | None, delta_bias: torch.Tensor | None) -> None:
    def bad(what: str) -> InvalidRequest:
        return InvalidRequest(f"selective_scan: {what} (u is (batch, D, L) = {tuple(u.shape)}, A is (D, N) = "
                              f"{tuple(A.shape)}).")

    if u.dim() != 3:
        raise bad(f"u must be (batch, D, L), got shape {tuple(u.shape)}")
    b, d, l_ = u.shape
    if delta.shape != u.shape:
        raise bad(f"delta must have u's shape, got {tuple(delta.shape)}")
    if A.dim() != 2 or A.shape[0] != d:
        raise bad(f"A must be (D, N) = ({d}, N), got {tuple(A.shape)}")
    if A.is_complex():
        raise bad("complex A is not supported (neither VMamba nor LaMamba uses it)")
    n = A.shape[1]
    for name, m in (("B", B), ("C", C)):
        ok = (m.dim() == 2 and tuple(m.shape) == (d, n)) or (m.dim() == 3 and tuple(m.shape) == (b, n, l_)) or \
             (m.dim() == 4 and m.shape[0] == b and m.shape[2:] == (n, l_) and m.shape[1] >= 1 and d % m.shape[1] == 0)
        if not ok:
            raise bad(f"{name} must be (D, N), (batch, N, L) or (batch, G, N, L) with G dividing D; got "
                      f"{tuple(m.shape)}")
    for name, v, shape in (("D", D, (d,)), ("delta_bias", delta_bias, (d,)), ("z", z, tuple(u.shape))):
        if v is not None and tuple(v.shape) != shape:
            raise bad(f"{name} must have shape {shape}, got {tuple(v.shape)}")


def _bc(m: torch.Tensor, d: int) -> torch.Tensor:
    """B or C as float32, broadcastable to (b, d, n, l)."""
    m = m.float()
    if m.dim() == 2:
        return m[None, :, :, None]
    if m.dim() == 3:
        return m[:, None]
    g = m.shape[1]
    return m.repeat_interleave(d // g, dim=1) if g != d else m


def prepare(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
            D: torch.Tensor | None = None, z: torch.Tensor | None = None, delta_bias: torch.Tensor | None = None,
            delta_softplus: bool = False) -> ScanOperands:
    """Checked, float32 operands shared by every implementation."""
    _check(u, delta, A, B, C, D, z, delta_bias)
    dt = delta.float()
    if delta_bias is not None:
        dt = dt + delta_bias.float()[:, None]
    if delta_softplus:
        dt = F.softplus(dt)
    d = u.shape[1]
    return ScanOperands(u.float(), dt, A.float(), _bc(B, d), _bc(C, d), u.dtype)


def finish(y: torch.Tensor, ops: ScanOperands, D: torch.Tensor | None, z: torch.Tensor | None) -> torch.Tensor:
    """Skip, gate and the cast back to the input dtype."""
    if D is not None:
        y = y + ops.u * D.float()[:, None]
    if z is not None:
        y = y * F.silu(z).float()
    return y.to(ops.dtype)


def selective_scan_reference(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                             C: torch.Tensor, D: torch.Tensor | None = None, z: torch.Tensor | None = None,
                             delta_bias: torch.Tensor | None = None, delta_softplus: bool = False,
                             return_last_state: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The exact sequential loop over L (what the official code computes, step by step)."""
    ops = prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    delta_a = torch.exp(ops.delta[:, :, None, :] * ops.A[None, :, :, None])           # (b, d, n, l)
    delta_b_u = (ops.delta * ops.u)[:, :, None, :] * ops.B                              # (b, d, n, l)
    c = ops.C.expand(delta_a.shape)
    h = delta_a.new_zeros(delta_a.shape[:3])
    ys = []
    for i in range(u.shape[2]):
        h = delta_a[..., i] * h + delta_b_u[..., i]
        ys.append((h * c[..., i]).sum(-1))
    y = finish(torch.stack(ys, dim=2), ops, D, z)
    return (y, h) if return_last_state else y


def chunk_length(length: int) -> int:
    """T ≈ √L minimises the T + L/T sequential steps of the chunked form."""
    return max(1, math.isqrt(max(length - 1, 0)) + 1)


def selective_scan_chunked(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                           C: torch.Tensor, D: torch.Tensor | None = None, z: torch.Tensor | None = None,
                           delta_bias: torch.Tensor | None = None, delta_softplus: bool = False,
                           return_last_state: bool = False, chunk: int | None = None
                           ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The same scan in ~2√L vectorised steps instead of L.

    The sequence is cut into chunks of T steps. (1) All chunks are scanned at once from a zero state, T steps in
    lock-step; (2) the state entering each chunk is carried across the L/T chunks with the chunk's total decay
    Π Ā; (3) each step adds the carried state times its within-chunk decay prefix (a cumulative product, so it
    only ever multiplies numbers in (0, 1] — no division, no overflow, unlike the exp-cumsum trick)."""
    _check(u, delta, A, B, C, D, z, delta_bias)
    b, d, length = u.shape
    n = A.shape[1]
    t = chunk or chunk_length(length)
    nc = -(-length // t)
    pad = nc * t - length
    dt = delta.float()
    if delta_bias is not None:
        dt = dt + delta_bias.float()[:, None]
    if delta_softplus:
        dt = F.softplus(dt)
    uf = u.float()

    def chunked(x: torch.Tensor, value: float = 0.0) -> torch.Tensor:
        """(..., L) → (t, ..., nc): step-within-chunk first, so lock-step updates touch contiguous memory."""
        x = F.pad(x, (0, pad), value=value) if pad else x  # padded steps: Ā = 1, B̄u = 0 carry the state
        x = x.reshape(*x.shape[:-1], nc, t)
        return x.permute(x.dim() - 1, *range(x.dim() - 1))

    def matrix(m: torch.Tensor) -> torch.Tensor:
        """B or C as (t, b|1, G, 1, n, nc) to broadcast against channels split as (G, D/G)."""
        m = m.float()
        if m.dim() == 2:  # (d, n): one "group" per channel
            return m.reshape(1, 1, d, 1, n, 1)
        if m.dim() == 3:
            m = m[:, None]
        return chunked(m)[:, :, :, None]

    groups = B.shape[1] if B.dim() == 4 else (d if B.dim() == 2 else 1)
    split = (t, b, groups, d // groups, 1, nc)
    a = torch.exp(chunked(dt)[:, :, :, None, :] * A.float()[None, None, :, :, None])      # (t, b, d, n, nc)
    bu = (chunked(dt * uf).reshape(split) * matrix(B)).reshape(t, b, d, n, nc)
    local = torch.empty_like(bu)
    h = bu.new_zeros(b, d, n, nc)
    for i in range(t):  # (1) every chunk from a zero state, in lock-step
        h = torch.addcmul(bu[i], a[i], h)
        local[i] = h
    decay = torch.cumprod(a, dim=0)                                                        # Π_{k≤i} Ā_k
    chunk_decay = decay[-1].permute(3, 0, 1, 2).contiguous()                             # (nc, b, d, n)
    chunk_end = h.permute(3, 0, 1, 2).contiguous()
    carried = torch.empty_like(chunk_end)
    state = bu.new_zeros(b, d, n)
    for c in range(nc):  # (2) the state entering each chunk
        carried[c] = state
        state = torch.addcmul(chunk_end[c], chunk_decay[c], state)
    states = torch.addcmul(local, decay, carried.permute(1, 2, 3, 0)[None])                # (3)
    cmat = matrix(C)
    cgroups = cmat.shape[2]
    y = (states.reshape(t, b, cgroups, d // cgroups, n, nc) * cmat).sum(4)               # (t, b, G, d/G, nc)
    y = y.reshape(t, b, d, nc).permute(1, 2, 3, 0).reshape(b, d, nc * t)[..., :length]
    y = finish(y, ScanOperands(uf, dt, A, B, C, u.dtype), D, z)
    return (y, state) if return_last_state else y
