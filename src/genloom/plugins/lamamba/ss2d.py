"""SS2D, the Mamba part of a LaMamba block (VMamba's "v2" forward, four continuous "snake" scan directions).

The selective scan itself comes from the kernel dispatcher; this module only prepares its operands, so the
network never names an implementation.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ...engine.errors import InvalidRequest
from ...kernels.dispatch import default_dispatcher

DIRECTIONS = 4


def snake_orders(height: int, width: int) -> torch.Tensor:
    """(4, H·W) raster indices visited by the four scans, each a boustrophedon path (consecutive tokens are
    spatial neighbours): rows downward from the top-left; rows upward from the bottom-left; columns rightward
    from the bottom-left (up column 0, down column 1, …); columns leftward from the bottom-right."""
    p = torch.arange(height * width)
    row, col = p // width, p % width
    col_snake = torch.where(row % 2 == 0, col, width - 1 - col)
    down = row * width + col_snake
    up = (height - 1 - row) * width + col_snake
    colpos, rowpos = p // height, p % height
    row_snake = torch.where(colpos % 2 == 0, height - 1 - rowpos, rowpos)
    right = row_snake * width + colpos
    left = row_snake * width + (width - 1 - colpos)
    return torch.stack((down, up, right, left))


def _scan(flat: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """(B, D, L) raster → (B, K, D, L): each direction's visiting order."""
    return torch.stack([flat[:, :, o] for o in order], dim=1)


def _merge(ys: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """(B, K, D, L) in scan order → (B, D, L) raster, summed over the directions."""
    merged = ys[:, 0][:, :, inverse[0]]
    for k in range(1, len(inverse)):
        merged = merged + ys[:, k][:, :, inverse[k]]
    return merged


class _CrossScan(torch.autograd.Function):
    """Cross-scan with cross-merge as its exact adjoint (and the reverse): both directions are gathers, so the
    backward pass never zero-fills and scatters as indexing's default backward does (a third of a training
    step's copies)."""

    @staticmethod
    def forward(ctx: object, flat: torch.Tensor, order: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(order, inverse)  # type: ignore[attr-defined]
        return _scan(flat, order)

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        order, inverse = ctx.saved_tensors  # type: ignore[attr-defined]
        return _merge(grad, inverse), None, None


class _CrossMerge(torch.autograd.Function):
    @staticmethod
    def forward(ctx: object, ys: torch.Tensor, order: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(order, inverse)  # type: ignore[attr-defined]
        return _merge(ys, inverse)

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        order, inverse = ctx.saved_tensors  # type: ignore[attr-defined]
        return _scan(grad, order), None, None


class SS2D(nn.Module):
    """in_proj → (x, z); depthwise conv + SiLU on x; 4-direction cross-scan; per-direction projections to
    (Δ, B, C); one selective scan over the packed directions; cross-merge (sum); LayerNorm; gate by SiLU(z);
    out_proj. Parameter names follow the official state dict."""

    def __init__(self, dim: int, d_state: int = 1, ssm_ratio: float = 2.0, dt_rank: int | None = None,
                 conv: int = 3, conv_bias: bool = False, kernels: Any = None) -> None:
        super().__init__()
        d_inner = int(ssm_ratio * dim)
        rank = dt_rank if dt_rank is not None else math.ceil(dim / 16)
        self.d_inner, self.d_state, self.dt_rank = d_inner, d_state, rank
        self.kernels = kernels
        self.in_proj = nn.Linear(dim, 2 * d_inner, bias=False)
        self.conv2d = nn.Conv2d(d_inner, d_inner, conv, padding=(conv - 1) // 2, groups=d_inner, bias=conv_bias)
        self.x_proj_weight = nn.Parameter(torch.empty(DIRECTIONS, rank + 2 * d_state, d_inner))
        self.dt_projs_weight = nn.Parameter(torch.empty(DIRECTIONS, d_inner, rank))
        self.dt_projs_bias = nn.Parameter(torch.empty(DIRECTIONS, d_inner))
        self.A_logs = nn.Parameter(torch.empty(DIRECTIONS * d_inner, d_state))
        self.Ds = nn.Parameter(torch.empty(DIRECTIONS * d_inner))
        self.out_norm = nn.LayerNorm(d_inner)
        self.out_proj = nn.Linear(d_inner, dim, bias=False)
        self._orders: dict[tuple[int, int, str], tuple[torch.Tensor, torch.Tensor]] = {}

    def reset_ssm_parameters(self, dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        """The official SSM initialisation (S4D-real A, log-uniform Δ through softplus⁻¹, D = 1)."""
        with torch.no_grad():
            bound = self.dt_rank ** -0.5
            nn.init.uniform_(self.dt_projs_weight, -bound, bound)
            nn.init.uniform_(self.x_proj_weight, -self.d_inner ** -0.5, self.d_inner ** -0.5)
            dt = torch.exp(torch.rand(self.dt_projs_bias.shape) * (math.log(dt_max) - math.log(dt_min))
                           + math.log(dt_min)).clamp(min=1e-4)
            self.dt_projs_bias.copy_(dt + torch.log(-torch.expm1(-dt)))
            a = torch.arange(1, self.d_state + 1, dtype=torch.float32).repeat(self.A_logs.shape[0], 1)
            self.A_logs.copy_(torch.log(a))
            self.Ds.fill_(1.0)

    def orders(self, height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (height, width, str(device))
        if key not in self._orders:  # normal tensors even when first built while sampling (inference mode), so a
            with torch.inference_mode(False):  # model that sampled can still be trained (f-distill's teacher pairs)
                order = snake_orders(height, width).to(device)
                self._orders[key] = (order, torch.argsort(order, dim=1))
        return self._orders[key]

    def scan_operands(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, d_inner, H, W) after the conv → the selective-scan arguments (float32, as the official code)."""
        b, d, h, w = x.shape
        order, inverse = self.orders(h, w, x.device)
        xs = _CrossScan.apply(x.reshape(b, d, h * w), order, inverse)                          # (B, K, D, L)
        proj = torch.einsum("bkdl,kcd->bkcl", xs, self.x_proj_weight)
        dts, bs, cs = torch.split(proj, [self.dt_rank, self.d_state, self.d_state], dim=2)
        dts = torch.einsum("bkrl,kdr->bkdl", dts, self.dt_projs_weight)
        return {"u": xs.reshape(b, -1, h * w).float(), "delta": dts.reshape(b, -1, h * w).float(),
                "A": -torch.exp(self.A_logs.float()), "B": bs.float().contiguous(), "C": cs.float().contiguous(),
                "D": self.Ds.float(), "delta_bias": self.dt_projs_bias.reshape(-1).float()}

    def merge(self, ys: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(B, K·D, L) in scan order → (B, D, L) in raster order, summed over the directions."""
        b = ys.shape[0]
        order, inverse = self.orders(height, width, ys.device)
        return _CrossMerge.apply(ys.reshape(b, DIRECTIONS, self.d_inner, height * width), order, inverse)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, C) channels-last."""
        b, h, w, _ = x.shape
        if h != w:
            raise InvalidRequest(f"LaMamba's continuous scan runs on square maps; got {h}×{w}.")
        xz = self.in_proj(x)
        xi, z = xz.chunk(2, dim=-1)
        z = nn.functional.silu(z)
        xi = nn.functional.silu(self.conv2d(xi.permute(0, 3, 1, 2).contiguous()))
        kernels = self.kernels or default_dispatcher()
        ys = kernels("selective_scan", **self.scan_operands(xi), delta_softplus=True)
        y = self.merge(ys, h, w).transpose(1, 2).reshape(b, h, w, self.d_inner)
        y = self.out_norm(y.to(x.dtype)) * z
        return self.out_proj(y)
