"""The selective scan as a Triton kernel (forward, for sampling): one program per (sequence, block of channels),
the state h (channels × N) in registers, a sequential loop over L — memory-bound and exact, the form the spec
recommends for LaMamba's N = 1. B and C reach the kernel as 4-D (batch, group, N, L) views with zero strides, so
time-invariant, shared and grouped layouts are one code path. Arithmetic is float32 whatever the input dtype."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .selective_scan import _check

BLOCK_D = 64
SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@triton.jit
def _selective_scan_kernel(u_ptr, delta_ptr, a_ptr, b_ptr, c_ptr, d_ptr, z_ptr, bias_ptr, out_ptr, last_ptr,
                           D, L, N, b_group_size, c_group_size,
                           sb_b, sb_g, sb_n, sb_l, sc_b, sc_g, sc_n, sc_l,
                           HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                           SOFTPLUS: tl.constexpr, BLOCK: tl.constexpr, BLOCK_N: tl.constexpr):
    pid_b = tl.program_id(0)
    offs_d = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d = offs_d < D
    mask_dn = mask_d[:, None] & (offs_n < N)[None, :]
    a = tl.load(a_ptr + offs_d[:, None] * N + offs_n[None, :], mask=mask_dn, other=0.0).to(tl.float32)
    b_rows = b_ptr + pid_b * sb_b + (offs_d // b_group_size)[:, None] * sb_g + offs_n[None, :] * sb_n
    c_rows = c_ptr + pid_b * sc_b + (offs_d // c_group_size)[:, None] * sc_g + offs_n[None, :] * sc_n
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    if HAS_D:
        skip = tl.load(d_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    rows = pid_b * D * L + offs_d * L
    h = tl.zeros((BLOCK, BLOCK_N), dtype=tl.float32)
    for step in range(L):
        u = tl.load(u_ptr + rows + step, mask=mask_d, other=0.0).to(tl.float32)
        dt = tl.load(delta_ptr + rows + step, mask=mask_d, other=0.0).to(tl.float32)
        if HAS_BIAS:
            dt = dt + bias
        if SOFTPLUS:
            dt = tl.where(dt <= 20.0, tl.log(1.0 + tl.exp(dt)), dt)
        bv = tl.load(b_rows + step * sb_l, mask=mask_dn, other=0.0).to(tl.float32)
        cv = tl.load(c_rows + step * sc_l, mask=mask_dn, other=0.0).to(tl.float32)
        h = tl.exp(dt[:, None] * a) * h + (dt * u)[:, None] * bv
        y = tl.sum(h * cv, axis=1)
        if HAS_D:
            y = y + skip * u
        if HAS_Z:
            z = tl.load(z_ptr + rows + step, mask=mask_d, other=0.0).to(tl.float32)
            y = y * z * tl.sigmoid(z)
        tl.store(out_ptr + rows + step, y, mask=mask_d)
    tl.store(last_ptr + (pid_b * D + offs_d[:, None]) * N + offs_n[None, :], h, mask=mask_dn)


def _as_4d(m: torch.Tensor, b: int, d: int) -> tuple[torch.Tensor, int]:
    """B or C as a (batch, groups, N, L)-strided view (zero strides where it is constant) and its group count."""
    if m.dim() == 2:  # (D, N): one group per channel, constant over batch and time
        return m.reshape(1, d, m.shape[1], 1).expand(b, d, m.shape[1], 1), d
    if m.dim() == 3:
        return m[:, None], 1
    return m, m.shape[1]


def unsupported(u: torch.Tensor, *args: object, **kwargs: object) -> str | None:
    """Why this kernel cannot take the call (None when it can)."""
    if u.dtype not in SUPPORTED_DTYPES:
        return f"dtype {u.dtype} (supported: float32, float16, bfloat16)"
    a = kwargs.get("A", args[1] if len(args) > 1 else None)
    if isinstance(a, torch.Tensor) and a.is_complex():
        return "complex A"
    return None


def selective_scan_triton(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                          C: torch.Tensor, D: torch.Tensor | None = None, z: torch.Tensor | None = None,
                          delta_bias: torch.Tensor | None = None, delta_softplus: bool = False,
                          return_last_state: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Same contract as :func:`genloom.kernels.selective_scan.selective_scan_reference`."""
    _check(u, delta, A, B, C, D, z, delta_bias)
    b, d, length = u.shape
    n = A.shape[1]
    u_, delta_ = u.contiguous(), delta.contiguous()
    z_ = z.contiguous() if z is not None else u_
    bm, b_groups = _as_4d(B, b, d)
    cm, c_groups = _as_4d(C, b, d)
    out = torch.empty(b, d, length, device=u.device, dtype=torch.float32)
    last = torch.empty(b, d, n, device=u.device, dtype=torch.float32)
    a32 = A.float().contiguous()
    grid = (b, triton.cdiv(d, BLOCK_D))
    _selective_scan_kernel[grid](
        u_, delta_, a32, bm, cm, D if D is not None else a32, z_,
        delta_bias if delta_bias is not None else a32, out, last, d, length, n, d // b_groups, d // c_groups,
        *[s if size > 1 else 0 for s, size in zip(bm.stride(), bm.shape)],
        *[s if size > 1 else 0 for s, size in zip(cm.stride(), cm.shape)],
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=delta_softplus,
        BLOCK=BLOCK_D, BLOCK_N=triton.next_power_of_2(n))
    y = out.to(u.dtype)
    return (y, last) if return_last_state else y
