"""The LaMamba-Diff U-Net: adaLN-Zero blocks of (SS2D Mamba → window attention → MLP), patch merging down,
patch expanding up with added skips, DiT's timestep/label conditioning and learned-σ output. Module and buffer
names follow the official state dict, so an official ``ema`` state dict loads strictly with no key map."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...kernels.dispatch import default_dispatcher
from .attention import WindowAttention, partition, shift_mask, stage_window, unpartition
from .config import LaMambaConfig
from .ss2d import SS2D


def timestep_embedding(t: torch.Tensor, dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """DiT's sinusoid of float timesteps, laid out [cos | sin]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimestepEmbedder(nn.Module):
    def __init__(self, dim: int, frequency_dim: int = 256) -> None:
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.frequency_dim).to(self.mlp[0].weight.dtype))


class LabelEmbedder(nn.Module):
    """The label table; the last row is the null label (classifier-free guidance and label dropout)."""

    def __init__(self, rows: int, dim: int) -> None:
        super().__init__()
        self.embedding_table = nn.Embedding(rows, dim)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.embedding_table(labels)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class LaMambaBlock(nn.Module):
    """x += g₁·SS2D(mod(LN(x))); x += g₂·WindowAttn(mod(LN(x))); x += g₃·MLP(mod(LN(x))) — adaLN-Zero with 9
    modulation vectors from the condition (projected to this width where it differs, always in the decoder)."""

    def __init__(self, config: LaMambaConfig, stage: int, dim: int, side: int, index: int, project: bool,
                 kernels: Any = None) -> None:
        super().__init__()
        c = config
        self.condition_projection: nn.Module = nn.Linear(c.cond_dim, dim) if project else nn.Identity()
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 9 * dim))
        self.norm = nn.LayerNorm(dim)
        self.op = SS2D(dim, c.ssm_d_state, c.ssm_ratio, c.ssm_dt_rank[stage], c.ssm_conv,  # type: ignore[index]
                       c.ssm_conv_bias, kernels=kernels)
        self.norm_swin = nn.LayerNorm(dim)
        self.window, self.shift = stage_window(side, c.window_size, index)
        self.attn = WindowAttention(dim, self.window, c.num_heads[stage], c.qkv_bias)  # type: ignore[index]
        if self.shift:
            self.register_buffer("attn_mask", shift_mask(side, self.window, self.shift), persistent=True)
        else:
            self.attn_mask = None
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * c.mlp_ratio))
        self.kernels = kernels

    def window_attention(self, x: torch.Tensor) -> torch.Tensor:
        """The (shifted) window attention on (B, H, W, C), without norm, modulation or residual."""
        b, h, w, _ = x.shape
        s = self.shift
        if s:
            x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
        out = unpartition(self.attn(partition(x, self.window), self.attn_mask), self.window, b, h, w)
        return torch.roll(out, shifts=(s, s), dims=(1, 2)) if s else out

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        mods = self.adaLN_modulation(self.condition_projection(cond)).chunk(9, dim=-1)
        x = x + mods[2][:, None, None] * self.op(self._modulated(self.norm, x, mods[0], mods[1]))
        x = x + mods[5][:, None, None] * self.window_attention(self._modulated(self.norm_swin, x, mods[3], mods[4]))
        return x + mods[8][:, None, None] * self.mlp(self._modulated(self.norm2, x, mods[6], mods[7]))

    def _modulated(self, norm: nn.LayerNorm, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """modulate(LN(x)) through the kernel dispatcher (its reference is exactly that)."""
        kernels = self.kernels or default_dispatcher()
        return kernels("modulated_layer_norm", x, shift, scale, norm.weight, norm.bias, norm.eps)


class PatchMerging(nn.Module):
    """2×2 neighbours (order (0,0), (1,0), (0,1), (1,1)) → LayerNorm(4C) → Linear(4C → 2C)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class PatchExpanding(nn.Module):
    """Linear(C → f²·C/f'…) then sub-pixel rearrangement (p1, p2, c' fastest) and LayerNorm: ``scale`` 2 halves
    the width (the decoder's up-sampling), the final ×patch expand keeps it."""

    def __init__(self, dim: int, scale: int = 2, out_dim: int | None = None) -> None:
        super().__init__()
        self.scale = scale
        self.out_dim = out_dim if out_dim is not None else dim // 2
        self.expand = nn.Linear(dim, scale * scale * self.out_dim, bias=False)
        self.norm = nn.LayerNorm(self.out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        s = self.scale
        x = self.expand(x).reshape(b, h, w, s, s, self.out_dim).permute(0, 1, 3, 2, 4, 5)
        return self.norm(x.reshape(b, h * s, w * s, self.out_dim))


class Stage(nn.Module):
    """A list of blocks on one map, with the optional down-/up-sampler under the official attribute names."""

    def __init__(self, blocks: list[LaMambaBlock], downsample: nn.Module | None = None,
                 upsample: nn.Module | None = None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        if downsample is not None:
            self.downsample = downsample
        if upsample is not None:
            self.upsample = upsample

    def run(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, cond)
        return x


class PatchEmbed(nn.Module):
    def __init__(self, in_channels: int, dim: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class LaMambaNetwork(nn.Module):
    """(latent (B, C, R, R), float timesteps in [0, 999], labels) → (B, 2C or C, R, R): ε then the learned-range
    variance values v ∈ [-1, 1]."""

    def __init__(self, config: LaMambaConfig, kernels: Any = None) -> None:
        super().__init__()
        c = self.config = config
        n = len(c.dims)
        sides = c.resolutions()
        self.patch_embed = PatchEmbed(c.in_channels, c.dims[0], c.patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, sides[0], sides[0], c.dims[0]))
        self.t_embedder = TimestepEmbedder(c.cond_dim)
        self.y_embedder = LabelEmbedder(c.table_rows, c.cond_dim)

        def blocks(stage: int, dim: int, side: int, depth: int, always_project: bool) -> list[LaMambaBlock]:
            project = always_project or dim != c.cond_dim
            return [LaMambaBlock(c, stage, dim, side, j, project, kernels) for j in range(depth)]

        self.layers = nn.ModuleList(
            Stage(blocks(i, c.dims[i], sides[i], c.depths[i], False),
                  downsample=PatchMerging(c.dims[i]) if c.downsamples(i) else None) for i in range(n))
        self.mid_layer = Stage(blocks(n - 1, c.dims[-1], sides[-1], c.bottleneck_depth, False))
        up = []
        for i in range(n):
            stage = n - 1 - i  # the encoder stage this decoder stage mirrors
            expand = PatchExpanding(c.dims[stage + 1]) if c.downsamples(stage) else None
            up.append(Stage(blocks(stage, c.dims[stage], sides[stage], c.decoder_depths[i], True),  # type: ignore
                            upsample=expand))
        self.layers_up = nn.ModuleList(up)
        d0 = c.dims[0]
        self.final_up = PatchExpanding(d0, scale=c.patch_size, out_dim=d0)
        self.final_condition_projection = nn.Linear(c.cond_dim, d0)
        self.final_adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d0, 2 * d0))
        self.final_norm = nn.LayerNorm(d0, elementwise_affine=False, eps=1e-6)
        self.final_linear = nn.Linear(d0, c.out_channels)
        self.kernels = kernels

    def condition(self, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.t_embedder(t) + self.y_embedder(labels)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x, t, labels)[0]

    def forward_features(self, x: torch.Tensor, t: torch.Tensor,
                         labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The output and the bottleneck's output ``(B, h, w, C)`` (a discriminator head's input)."""
        cond = self.condition(t, labels)
        h = self.patch_embed(x) + self.pos_embed
        skips = []
        for stage in self.layers:
            h = stage.run(h, cond)
            skips.append(h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = h + self.mid_layer.run(h, cond)
        mid = h
        for stage, skip in zip(self.layers_up, reversed(skips), strict=True):
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
            h = stage.run(h + skip, cond)
        h = self.final_up(h)
        shift, scale = self.final_adaLN_modulation(self.final_condition_projection(cond)).chunk(2, dim=-1)
        kernels = self.kernels or default_dispatcher()
        h = self.final_linear(kernels("modulated_layer_norm", h, shift, scale, None, None, self.final_norm.eps))
        return h.permute(0, 3, 1, 2), mid

    def initialize_weights(self) -> None:
        """The official initialisation: Xavier linears, zero adaLN modulations (every block starts as the
        identity) and output layer, N(0, 0.02) label table and timestep MLP, 2-D sin-cos position table."""
        def basic(m: nn.Module) -> None:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.apply(basic)
        with torch.no_grad():
            self.pos_embed.copy_(sincos_2d(self.pos_embed.shape[-1], self.pos_embed.shape[1])[None])
            nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
            for lin in (self.t_embedder.mlp[0], self.t_embedder.mlp[2]):
                nn.init.normal_(lin.weight, std=0.02)
            for module in self.modules():
                if isinstance(module, LaMambaBlock):
                    nn.init.zeros_(module.adaLN_modulation[1].weight)
                    nn.init.zeros_(module.adaLN_modulation[1].bias)
                if isinstance(module, SS2D):
                    module.reset_ssm_parameters()
            for lin in (self.final_adaLN_modulation[1], self.final_linear):
                nn.init.zeros_(lin.weight)
                nn.init.zeros_(lin.bias)


def sincos_2d(dim: int, side: int) -> torch.Tensor:
    """(side, side, dim) 2-D sin-cos table (MAE/DiT convention: half the channels for each axis)."""
    def one_d(d: int, pos: torch.Tensor) -> torch.Tensor:
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
        out = pos.reshape(-1, 1).double() * omega[None]
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

    grid_h, grid_w = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    emb = torch.cat([one_d(dim // 2, grid_w), one_d(dim // 2, grid_h)], dim=1)
    return emb.float().reshape(side, side, dim)
