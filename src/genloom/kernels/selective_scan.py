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
from typing import Any

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


def step_sizes(delta: torch.Tensor, delta_bias: torch.Tensor | None,
               softplus: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(Δ before softplus, Δ) in float32: delta plus its bias, softplus if asked (PyTorch's threshold 20)."""
    pre = delta.float() if delta_bias is None else delta.float() + delta_bias.float()[:, None]
    return pre, (F.softplus(pre) if softplus else pre)


def prepare(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
            D: torch.Tensor | None = None, z: torch.Tensor | None = None, delta_bias: torch.Tensor | None = None,
            delta_softplus: bool = False) -> ScanOperands:
    """Checked, float32 operands shared by every implementation."""
    _check(u, delta, A, B, C, D, z, delta_bias)
    dt = step_sizes(delta, delta_bias, delta_softplus)[1]
    d = u.shape[1]
    return ScanOperands(u.float(), dt, A.float(), _bc(B, d), _bc(C, d))


def finish(y: torch.Tensor, u: torch.Tensor, D: torch.Tensor | None, z: torch.Tensor | None) -> torch.Tensor:
    """Skip, gate and the cast back to the input ``u``'s dtype."""
    if D is not None:
        y = y + u.float() * D.float()[:, None]
    if z is not None:
        y = y * F.silu(z).float()
    return y.to(u.dtype)


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
    y = finish(torch.stack(ys, dim=2), u, D, z)
    return (y, h) if return_last_state else y


def chunk_length(length: int) -> int:
    """T ≈ √L minimises the T + L/T sequential steps of the chunked form."""
    return max(1, math.isqrt(max(length - 1, 0)) + 1)


def scan_states(a: torch.Tensor, bu: torch.Tensor, chunk: int | None = None,
                reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Every state of h_l = a_l·h_{l−1} + bu_l (h_{−1} = 0) for (b, d, n, L) float32 inputs, and the last one,
    in ~2√L vectorised steps instead of L. ``reverse``: the same recurrence run from the end, h_l = a_l·h_{l+1} +
    bu_l (h_L = 0) — the adjoint scan of the backward pass, without flipping any tensor.

    The sequence is cut into chunks of T steps. (1) All chunks are scanned at once from a zero state, T steps in
    lock-step, keeping each step's decay product within its chunk; (2) the state entering each chunk is carried
    across the L/T chunks with the chunk's total decay Π a; (3) each step adds the carried state times its decay
    product (only numbers in (0, 1] are multiplied — no division, no overflow, unlike the exp-cumsum trick).
    Decays above 1 (a negative step without softplus, which no Mamba model produces) can overflow where the
    sequential loop would not; use the reference for those."""
    b, d, n, length = a.shape
    t = chunk or chunk_length(length)
    nc = -(-length // t)
    pad = nc * t - length
    if pad:  # a = 1, bu = 0: the padded steps carry the state unchanged (after the end, or before the start)
        where = (pad, 0) if reverse else (0, pad)
        a, bu = F.pad(a, where, value=1.0), F.pad(bu, where)
    # step-within-chunk first, so every lock-step update reads and writes contiguous memory: (t, b, d, n, nc)
    a = a.reshape(b, d, n, nc, t).permute(4, 0, 1, 2, 3).contiguous()
    bu = bu.reshape(b, d, n, nc, t).permute(4, 0, 1, 2, 3).contiguous()
    local, decay = torch.empty_like(bu), torch.empty_like(a)
    h, p = bu.new_zeros(b, d, n, nc), a.new_ones(b, d, n, nc)
    steps = range(t - 1, -1, -1) if reverse else range(t)
    for i in steps:  # (1)
        h = torch.addcmul(bu[i], a[i], h)
        p = p * a[i]
        local[i], decay[i] = h, p
    chunk_decay = p.permute(3, 0, 1, 2).contiguous()                                       # (nc, b, d, n)
    chunk_end = h.permute(3, 0, 1, 2).contiguous()
    carried = torch.empty_like(chunk_end)
    state = bu.new_zeros(b, d, n)
    for c in (range(nc - 1, -1, -1) if reverse else range(nc)):  # (2)
        carried[c] = state
        state = torch.addcmul(chunk_end[c], chunk_decay[c], state)
    states = torch.addcmul(local, decay, carried.permute(1, 2, 3, 0)[None])                  # (3)
    states = states.permute(1, 2, 3, 4, 0).reshape(b, d, n, nc * t)
    return (states[..., pad:] if reverse else states[..., :length]), state


def _reduce_like(grad: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """A (b, d, n, L) gradient summed back to B's or C's own layout (time-invariant, shared or grouped)."""
    if m.dim() == 2:
        return grad.sum((0, 3))
    if m.dim() == 3:
        return grad.sum(1)
    b, g = m.shape[:2]
    return grad.reshape(b, g, -1, *grad.shape[2:]).sum(2)


class _ChunkedScan(torch.autograd.Function):
    """The chunked scan with its analytic backward: the adjoint g_l = C_l·dy_l + a_{l+1}·g_{l+1} is the same
    scan run backwards in time, so training costs two chunked scans instead of autograd's many small ops."""

    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                D: torch.Tensor | None, z: torch.Tensor | None, delta_bias: torch.Tensor | None,
                delta_softplus: bool, chunk: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        pre, dt = step_sizes(delta, delta_bias, delta_softplus)
        d = u.shape[1]
        uf, af, bx, cx = u.float(), A.float(), _bc(B, d), _bc(C, d)
        a = torch.exp(dt[:, :, None, :] * af[None, :, :, None])
        x = dt * uf
        states, last = scan_states(a, (x[:, :, None, :] * bx).expand_as(a).contiguous(), chunk)
        y = (states * cx).sum(2)
        if D is not None:
            y = y + uf * D.float()[:, None]
        out = y * F.silu(z).float() if z is not None else y
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, pre, dt, a, states, y)
        ctx.softplus, ctx.chunk = delta_softplus, chunk
        return out.to(u.dtype), last

    @staticmethod
    def backward(ctx: Any, dout: torch.Tensor | None, dlast: torch.Tensor | None) -> tuple[Any, ...]:
        u, delta, A, B, C, D, z, delta_bias, pre, dt, a, states, y = ctx.saved_tensors
        d = u.shape[1]
        uf, af, bx, cx = u.float(), A.float(), _bc(B, d), _bc(C, d)
        dy = dout.float() if dout is not None else torch.zeros_like(y)
        dz = None
        if z is not None:
            zf = z.float()
            sig = torch.sigmoid(zf)
            dz = (dy * y * sig * (1 + zf * (1 - sig))).to(z.dtype)
            dy = dy * F.silu(z).float()
        du = dy * D.float()[:, None] if D is not None else torch.zeros_like(uf)
        d_d = (dy * uf).sum((0, 2)).to(D.dtype) if D is not None else None
        dc = _reduce_like(dy[:, :, None, :] * states, C).to(C.dtype)
        cdy = (cx * dy[:, :, None, :]).expand_as(a).clone()
        if dlast is not None:
            cdy[..., -1] += dlast
        a_next = torch.cat([a[..., 1:], torch.ones_like(a[..., :1])], dim=-1)
        g = scan_states(a_next, cdy, ctx.chunk, reverse=True)[0]                              # adjoint of h
        h_prev = torch.cat([torch.zeros_like(states[..., :1]), states[..., :-1]], dim=-1)
        ga = g * h_prev * a
        d_a_param = (ga * dt[:, :, None, :]).sum((0, 3))
        sgb = (g * bx).sum(2)
        d_dt = (ga * af[None, :, :, None]).sum(2) + uf * sgb
        du = du + dt * sgb
        db = _reduce_like(g * (dt * uf)[:, :, None, :], B).to(B.dtype)
        d_pre = d_dt * torch.sigmoid(pre) if ctx.softplus else d_dt
        d_bias = d_pre.sum((0, 2)).to(delta_bias.dtype) if delta_bias is not None else None
        return (du.to(u.dtype), d_pre.to(delta.dtype), d_a_param.to(A.dtype), db, dc, d_d, dz, d_bias, None, None)


def _grouped(m: torch.Tensor, d: int, groups: int) -> torch.Tensor:
    """B or C as float32, broadcastable to (b, groups, d / groups, n, L) without repeating a group's rows."""
    m = m.float()
    if m.dim() == 2:
        return m.view(1, groups, d // groups, m.shape[1], 1)
    if m.dim() == 3:
        return m[:, None, None]
    return m.repeat_interleave(groups // m.shape[1], dim=1)[:, :, None]


def _to_chunks(x: torch.Tensor, t: int, nc: int) -> torch.Tensor:
    """(..., L) → (t, ..., nc): step-within-chunk first, zero-padded to nc·t steps; a time-invariant (..., 1)
    input stays one broadcast step."""
    length = x.shape[-1]
    if length == 1:
        return x[None]
    x = F.pad(x, (0, nc * t - length)).reshape(*x.shape[:-1], nc, t)
    return x.movedim(-1, 0).contiguous()


def _chunked_inference(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                       D: torch.Tensor | None, z: torch.Tensor | None, delta_bias: torch.Tensor | None,
                       delta_softplus: bool, chunk: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`scan_states`' algorithm for the forward pass only, never holding a (b, D, N, L) tensor in time order.

    Only the (b, D, L)-sized inputs and B, C are moved to the chunk-major layout; each lock-step update builds its
    decays exp(Δ·A) and inputs Δ·B·u for all chunks at once and contracts with C at once, so the (b, D, N) states
    stay in cache. What the carried state adds later, Σ_n C·Πa·h_carried, needs C·Πa per step: the one full-size
    tensor kept. Groups of B and C stay groups (channels split as (G, D/G)) instead of being repeated per channel.
    Values equal the autograd form's within float32 rounding (same products, another summation order)."""
    b, d, length = u.shape
    n = A.shape[1]
    groups = math.lcm(*(m.shape[1] for m in (B, C) if m.dim() == 4)) if 4 in (B.dim(), C.dim()) else 1
    t = chunk or chunk_length(length)
    nc = -(-length // t)
    dt = step_sizes(delta, delta_bias, delta_softplus)[1]
    uf = u.float()
    split = (b, groups, d // groups)
    dt_c = _to_chunks(dt.view(*split, length), t, nc)[..., None, :]                       # (t, b, G, Dg, 1, nc)
    x_c = _to_chunks((dt * uf).view(*split, length), t, nc)[..., None, :]
    b_c, c_c = (_to_chunks(_grouped(m, d, groups), t, nc) for m in (B, C))               # (t|1, b|1, G, ., n, nc|1)
    a_param = A.float().view(groups, d // groups, n, 1)
    h = uf.new_zeros(*split, n, nc)
    p = uf.new_ones(*split, n, nc)
    y = uf.new_empty(t, *split, nc)
    c_decay = uf.new_empty(t, *split, n, nc)
    for i in range(t):
        a = torch.exp(dt_c[i] * a_param)
        h = torch.addcmul(x_c[i] * b_c[min(i, len(b_c) - 1)], a, h)
        p = p * a
        c_i = c_c[min(i, len(c_c) - 1)]
        y[i] = (h * c_i).sum(-2)
        torch.mul(c_i, p, out=c_decay[i])
    carried = torch.empty_like(h)
    state = uf.new_zeros(*split, n)
    for c in range(nc):  # the state entering each chunk, carried with the chunk's total decay
        carried[..., c] = state
        state = torch.addcmul(h[..., c], p[..., c], state)
    y = y + (c_decay * carried).sum(-2)
    y = y.movedim(0, -1).reshape(b, d, nc * t)[..., :length]
    return finish(y, u, D, z), state.reshape(b, d, n)


def selective_scan_chunked(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                           C: torch.Tensor, D: torch.Tensor | None = None, z: torch.Tensor | None = None,
                           delta_bias: torch.Tensor | None = None, delta_softplus: bool = False,
                           return_last_state: bool = False, chunk: int | None = None
                           ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The same scan in ~2√L vectorised steps (:func:`scan_states`), differentiable with an analytic backward."""
    _check(u, delta, A, B, C, D, z, delta_bias)
    inputs = (u, delta, A, B, C, D, z, delta_bias)
    if torch.is_grad_enabled() and any(x is not None and x.requires_grad for x in inputs):
        y, last = _ChunkedScan.apply(*inputs, delta_softplus, chunk)
    else:
        y, last = _chunked_inference(*inputs, delta_softplus, chunk)
    return (y, last) if return_last_state else y
