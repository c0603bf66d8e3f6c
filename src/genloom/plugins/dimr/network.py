"""The DiMR network (re-derived from the spec, module tree mirroring the official key names).

Time enters only through time-dependent parameters (TDP): p(τ) = p1 + σ((1 + w)·τ + b)·(p0 − p1), per channel,
with τ = 2n/1000 − 1 for DiMR time n. The class enters only through the class token of Transformer stages.
Every stage re-reads the input, adds the up-sampled hand-off of the coarser stage, runs U-ViT blocks with long
skips, and predicts ε at its own resolution; the last stage's prediction is the model's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import DiMRConfig, StageConfig


def _rows(p: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B, d) → broadcastable against ``like`` (B, ..., d)."""
    return p.reshape(p.shape[0], *([1] * (like.dim() - 2)), p.shape[1])


class TimeDependentParameter(nn.Module):
    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.param0 = nn.Parameter(torch.full((dim,), float(init)))
        self.param1 = nn.Parameter(torch.full((dim,), float(init)))
        self.nodecay_weight = nn.Parameter(torch.zeros(dim))
        self.nodecay_bias = nn.Parameter(torch.zeros(dim))

    def forward(self, tau: torch.Tensor) -> torch.Tensor:
        """τ (B,) → (B, dim). The stored slope is w, the applied slope 1 + w."""
        s = torch.sigmoid((1 + self.nodecay_weight) * tau[:, None] + self.nodecay_bias)
        return self.param1 + s * (self.param0 - self.param1)


class TDRMSNorm(nn.Module):
    """γ(τ)·x / (‖x‖/√d + 1e-8): the epsilon is added to the RMS, outside the square root."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.scale = TimeDependentParameter(dim, 1.0)

    def forward(self, x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        rms = x.norm(2, dim=-1, keepdim=True) * self.dim ** -0.5
        return _rows(self.scale(tau), x) * (x / (rms + 1e-8))


class TDLayerNorm(nn.Module):
    """LayerNorm (eps 1e-5) with a time-dependent scale and shift."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.weight = TimeDependentParameter(dim, 1.0)
        self.bias = TimeDependentParameter(dim, 0.0)

    def forward(self, x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x, (self.dim,), eps=1e-5)
        return y * _rows(self.weight(tau), x) + _rows(self.bias(tau), x)


def make_norm(norm_type: str, dim: int) -> nn.Module:
    return TDRMSNorm(dim) if norm_type == "TDRMSN" else TDLayerNorm(dim)


class Attention(nn.Module):
    """Pre-norm self-attention: q/k/v from one bias-free Linear ([q | k | v], heads within each third)."""

    def __init__(self, dim: int, heads: int, norm_type: str) -> None:
        super().__init__()
        self.heads = heads
        self.norm = make_norm(norm_type, dim)
        self.query_key_value = nn.Linear(dim, 3 * dim, bias=False)
        self.dense = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.query_key_value(self.norm(x, tau)).reshape(b, n, 3, self.heads, d // self.heads).unbind(2)
        out = F.scaled_dot_product_attention(q.transpose(1, 2).float(), k.transpose(1, 2).float(),
                                             v.transpose(1, 2).float())
        return self.dense(out.to(x.dtype).transpose(1, 2).reshape(b, n, d))


class GLUMLP(nn.Module):
    """GELU(W0·x) ⊙ (W1·x) → W2, after a time-dependent norm."""

    def __init__(self, dim: int, hidden: int, norm_type: str) -> None:
        super().__init__()
        self.norm = make_norm(norm_type, dim)
        self.w0 = nn.Linear(dim, hidden)
        self.w1 = nn.Linear(dim, hidden)
        self.w2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        h = self.norm(x, tau)
        return self.w2(F.gelu(self.w0(h)) * self.w1(h))


class Permute(nn.Module):
    def __init__(self, *dims: int) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


class Block(nn.Module):
    """Transformer block (attention + GLU-MLP) or ConvNeXt block (depthwise conv, no norm, + GLU-MLP)."""

    def __init__(self, stage: StageConfig, norm_type: str) -> None:
        super().__init__()
        if stage.block_type == "transformer":
            self.block1: nn.Module = Attention(stage.dim, stage.num_heads, norm_type)
        else:
            k = stage.kernel_size
            self.block1 = nn.Sequential(Permute(0, 3, 1, 2),
                                        nn.Conv2d(stage.dim, stage.dim, k, padding=k // 2, groups=stage.dim),
                                        Permute(0, 2, 3, 1))
        self.block2 = GLUMLP(stage.dim, stage.hidden_dim, norm_type)

    def forward(self, x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        x = x + (self.block1(x, tau) if isinstance(self.block1, Attention) else self.block1(x))
        return x + self.block2(x, tau)


class AreaDownsample(nn.Module):
    def __init__(self, ratio: int) -> None:
        super().__init__()
        self.ratio = ratio

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ratio == 1:
            return x
        return F.interpolate(x, size=(x.shape[-2] // self.ratio, x.shape[-1] // self.ratio), mode="area")


class PositionTable(nn.Module):
    """Learned absolute positions: row h·max_width + w."""

    def __init__(self, max_height: int, max_width: int, dim: int) -> None:
        super().__init__()
        self.max_height, self.max_width = max_height, max_width
        self.position_embeddings = nn.Embedding(max_height * max_width, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[1], x.shape[2]
        table = self.position_embeddings.weight.reshape(self.max_height, self.max_width, -1)[:h, :w]
        return x + table


class PixelShuffleLinear(nn.Module):
    """Linear to dim·r² then DiMR's pixel shuffle: output channel (i·r + j)·dim + c → sub-pixel (i, j), channel c
    (not ``nn.PixelShuffle``'s order)."""

    def __init__(self, in_dim: int, dim: int, ratio: int) -> None:
        super().__init__()
        self.dim, self.ratio = dim, ratio
        self.kernel = nn.Linear(in_dim, dim * ratio * ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        r = self.ratio
        y = self.kernel(x).reshape(b, h, w, r, r, self.dim).permute(0, 1, 3, 2, 4, 5)
        return y.reshape(b, h * r, w * r, self.dim)


class Stage(nn.Module):
    def __init__(self, cfg: StageConfig, config: DiMRConfig, prev: StageConfig | None) -> None:
        super().__init__()
        self.cfg = cfg
        self.transformer = cfg.block_type == "transformer"
        f = cfg.input_feature_ratio
        self.input_layer = nn.Sequential(AreaDownsample(cfg.image_input_ratio),
                                         nn.Conv2d(config.channels, cfg.dim, f, stride=f),
                                         Permute(0, 2, 3, 1), PositionTable(cfg.max_height, cfg.max_width, cfg.dim))
        if self.transformer:
            self.class_embeds = nn.Embedding(config.num_classes, cfg.dim)
        if prev is not None:
            ratio = cfg.max_height // prev.max_height
            self.upsample = nn.ModuleList([TDLayerNorm(prev.handoff_channels),
                                           PixelShuffleLinear(prev.handoff_channels, cfg.dim, ratio),
                                           TDLayerNorm(cfg.dim)])
        self.blocks = nn.ModuleList([Block(cfg, config.norm_type) for _ in range(cfg.built_blocks)])
        self.skip_denses = nn.ModuleList([nn.Linear(2 * cfg.dim, cfg.dim) for _ in range(cfg.num_blocks // 2)])
        k = cfg.final_kernel_size
        self.output_layer = nn.ModuleList([TDLayerNorm(cfg.dim), Permute(0, 3, 1, 2),
                                           nn.Conv2d(cfg.dim, config.channels, k, padding=k // 2)])

    def forward(self, x: torch.Tensor, tau: torch.Tensor, labels: torch.Tensor | None,
                handoff: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.input_layer(x)
        if handoff is not None:
            norm_in, shuffle, norm_out = self.upsample
            h = h + norm_out(shuffle(norm_in(handoff, tau)), tau)
        b, hh, ww, d = h.shape
        if self.transformer:
            h = torch.cat((self.class_embeds(labels)[:, None], h.reshape(b, hh * ww, d)), dim=1)
        feats, skips = [h], []
        half = self.cfg.num_blocks // 2
        for blk in self.blocks[:half]:
            h = blk(h, tau)
            skips.append(h)
            feats.append(h)
        h = self.blocks[half](h, tau)
        feats.append(h)
        for dense, blk in zip(self.skip_denses, self.blocks[half + 1:]):
            h = blk(dense(torch.cat((h, skips.pop()), dim=-1)), tau)
            feats.append(h)
        if self.transformer:
            feats = [f[:, 1:].reshape(b, hh, ww, d) for f in feats]
            h = feats[-1]
        norm, to_channels_first, conv = self.output_layer
        eps = conv(to_channels_first(norm(h, tau)))
        return eps, torch.cat(feats, dim=-1)


class DiMRNetwork(nn.Module):
    """``forward(x, tau, labels)`` → per-stage ε predictions, coarsest first."""

    def __init__(self, config: DiMRConfig) -> None:
        super().__init__()
        self.config = config
        self.stages = nn.ModuleList(
            [Stage(cfg, config, config.stages[i - 1] if i else None) for i, cfg in enumerate(config.stages)])

    def forward(self, x: torch.Tensor, tau: torch.Tensor, labels: torch.Tensor | None) -> list[torch.Tensor]:
        return self.forward_features(x, tau, labels)[0]

    def forward_features(self, x: torch.Tensor, tau: torch.Tensor,
                         labels: torch.Tensor | None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The per-stage predictions and the coarsest stage's hand-off features ``(B, h, w, C)``."""
        if tau.dim() == 0:
            tau = tau.expand(x.shape[0])
        tau = tau.to(x.dtype)
        outputs, handoffs = [], []
        handoff = None
        for stage in self.stages:
            eps, handoff = stage(x, tau, labels, handoff)
            outputs.append(eps)
            handoffs.append(handoff)
        return outputs, handoffs[0]


def tau_from_time(n: torch.Tensor) -> torch.Tensor:
    """DiMR time n ∈ [1, 1000] → τ, through the official log-SNR-like input (n/1000·8 − 4)/4."""
    return (n.float() / 1000 * 8 - 4) / 4

