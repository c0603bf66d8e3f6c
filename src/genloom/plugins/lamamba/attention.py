"""Swin window attention as LaMamba uses it: W-MSA on even blocks, SW-MSA (cyclic shift by half a window with
the region mask) on odd ones, global attention when the map fits in one window."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MASKED = -100.0  # the official region-mask value


def relative_position_index(window: int) -> torch.Tensor:
    """(w², w²) index into the (2w−1)² bias table, Swin's convention."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1]


def partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) → (B·windows, w², C), windows in raster order."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, c)


def unpartition(windows: torch.Tensor, window: int, b: int, h: int, w: int) -> torch.Tensor:
    c = windows.shape[-1]
    x = windows.reshape(b, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def shift_mask(side: int, window: int, shift: int) -> torch.Tensor:
    """(windows, w², w²): MASKED between tokens that the cyclic shift brought from different regions."""
    regions = torch.zeros(1, side, side, 1)
    bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for hs in bands:
        for ws in bands:
            regions[:, hs, ws, :] = label
            label += 1
    ids = partition(regions, window).squeeze(-1)
    diff = ids[:, None, :] - ids[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, MASKED)


def stage_window(side: int, window: int, index: int) -> tuple[int, int]:
    """(window, shift) of block ``index`` on a ``side``-square map: odd blocks shift by w/2; a map that fits in
    one window uses it whole, unshifted."""
    if side <= window:
        return side, 0
    return window, (window // 2 if index % 2 else 0)


class WindowAttention(nn.Module):
    """qkv → per-window multi-head attention with the learned relative-position bias → proj."""

    def __init__(self, dim: int, window: int, heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.window, self.heads = window, heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(window), persistent=True)

    def forward(self, windows: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """windows: (B·nW, N, C); mask: (nW, N, N) or None."""
        bw, n, c = windows.shape
        qkv = self.qkv(windows).reshape(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        attn = attn + bias.reshape(n, n, -1).permute(2, 0, 1)[None]
        if mask is not None:
            nw = mask.shape[0]
            attn = (attn.reshape(bw // nw, nw, self.heads, n, n) + mask[None, :, None]).reshape(bw, self.heads, n, n)
        out = F.softmax(attn, dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))
