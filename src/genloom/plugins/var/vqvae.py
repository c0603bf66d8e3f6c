"""VAR's multi-scale residual VQVAE, written from the spec; module names follow the official state dict."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...kernels.dispatch import default_dispatcher
from .config import VQVAEConfig, phi_index_map


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.nin_shortcut(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all positions, one fused 1×1 ``qkv`` conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        attn = torch.bmm(q.permute(0, 2, 1), k).mul_(c ** -0.5).softmax(dim=2)  # (b, hw_q, hw_k)
        out = torch.bmm(v, attn.permute(0, 2, 1)).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    """One resolution level: ``block.i``, optional ``attn.i`` after each block, optional resampler."""

    def __init__(self, blocks: list[nn.Module], attns: list[nn.Module]) -> None:
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.attn = nn.ModuleList(attns)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.block):
            x = block(x)
            if len(self.attn):
                x = self.attn[i](x)
        return x


class _Mid(nn.Module):
    def __init__(self, channels: int, attention: bool) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels)
        self.attn_1 = AttnBlock(channels) if attention else nn.Identity()
        self.block_2 = ResnetBlock(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    def __init__(self, cfg: VQVAEConfig) -> None:
        super().__init__()
        ch, mult, n = cfg.ch, cfg.ch_mult, len(cfg.ch_mult)
        in_mult = (1, *mult)
        self.conv_in = nn.Conv2d(3, ch, 3, padding=1)
        self.down = nn.ModuleList()
        for i in range(n):
            cin, cout = ch * in_mult[i], ch * mult[i]
            blocks = [ResnetBlock(cin if j == 0 else cout, cout) for j in range(cfg.num_res_blocks)]
            attns = [AttnBlock(cout) for _ in blocks] if (i == n - 1 and cfg.using_sa) else []
            level = _Level(blocks, attns)
            if i != n - 1:
                level.downsample = Downsample(cout)
            self.down.append(level)
        top = ch * mult[-1]
        self.mid = _Mid(top, cfg.using_mid_sa)
        self.norm_out = _norm(top)
        self.conv_out = nn.Conv2d(top, cfg.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class Decoder(nn.Module):
    def __init__(self, cfg: VQVAEConfig) -> None:
        super().__init__()
        ch, mult, n = cfg.ch, cfg.ch_mult, len(cfg.ch_mult)
        block_in = ch * mult[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, block_in, 3, padding=1)
        self.mid = _Mid(block_in, cfg.using_mid_sa)
        levels: list[nn.Module] = [nn.Module()] * n
        for i in reversed(range(n)):
            cout = ch * mult[i]
            blocks = [ResnetBlock(block_in if j == 0 else cout, cout) for j in range(cfg.num_res_blocks + 1)]
            attns = [AttnBlock(cout) for _ in blocks] if (i == n - 1 and cfg.using_sa) else []
            level = _Level(blocks, attns)
            if i != 0:
                level.upsample = Upsample(cout)
            levels[i] = level
            block_in = cout
        self.up = nn.ModuleList(levels)
        self.norm_out = _norm(block_in)
        self.conv_out = nn.Conv2d(block_in, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for i in reversed(range(len(self.up))):
            h = self.up[i](h)
            if i != 0:
                h = self.up[i].upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Phi(nn.Conv2d):
    """φ(h) = (1 − r)·h + r·conv3×3(h)."""

    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__(channels, channels, 3, padding=1)
        self.ratio = abs(ratio)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.mul(1 - self.ratio) + super().forward(h).mul_(self.ratio)


class PhiShared(nn.Module):
    """share_quant_resi = 1: one φ for every scale (keys ``quant_resi.qresi.*``)."""

    def __init__(self, phi: Phi) -> None:
        super().__init__()
        self.qresi = phi

    def at(self, j: int) -> Phi:
        return self.qresi


class PhiPartiallyShared(nn.Module):
    """share_quant_resi = N ≥ 2: N φ convs (keys ``quant_resi.qresi_ls.j.*``)."""

    def __init__(self, phis: list[Phi]) -> None:
        super().__init__()
        self.qresi_ls = nn.ModuleList(phis)

    def at(self, j: int) -> Phi:
        return self.qresi_ls[j]


class PhiNonShared(nn.ModuleList):
    """share_quant_resi = 0: one φ per scale (keys ``quant_resi.j.*``)."""

    def at(self, j: int) -> Phi:
        return self[j]


class MultiScaleQuantizer(nn.Module):
    """Residual quantizer over the scale schedule, with the partially shared φ convolutions."""

    def __init__(self, cfg: VQVAEConfig, kernels: Any = None) -> None:
        super().__init__()
        self.cfg, self.kernels = cfg, kernels
        c, k = cfg.z_channels, len(cfg.patch_nums)
        self.embedding = nn.Embedding(cfg.vocab_size, c)
        share = cfg.share_quant_resi
        if share == 0:
            self.quant_resi: nn.Module = PhiNonShared([Phi(c, cfg.quant_resi) for _ in range(k)])
            num_phi = k
        elif share == 1:
            self.quant_resi = PhiShared(Phi(c, cfg.quant_resi))
            num_phi = 1
        else:
            self.quant_resi = PhiPartiallyShared([Phi(c, cfg.quant_resi) for _ in range(share)])
            num_phi = share
        self.phi_map = phi_index_map(k, num_phi)
        self.register_buffer("ema_vocab_hit_SV", torch.zeros(k, cfg.vocab_size))  # training statistic only

    @property
    def patch_nums(self) -> tuple[int, ...]:
        return self.cfg.patch_nums

    def phi(self, k: int, h: torch.Tensor) -> torch.Tensor:
        return self.quant_resi.at(self.phi_map[k])(h)

    def tokens_to_map(self, h_tokens: torch.Tensor, pn: int) -> torch.Tensor:
        """(B, pn², C) row-major tokens → (B, C, pn, pn)."""
        return h_tokens.transpose(1, 2).reshape(h_tokens.shape[0], -1, pn, pn)

    def lookup(self, idx: torch.Tensor, pn: int) -> torch.Tensor:
        """(B, pn²) indices → (B, C, pn, pn) code vectors."""
        return self.tokens_to_map(self.embedding(idx), pn)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Euclidean nearest code per position of (B, C, h, w) → (B, h·w), through the kernel dispatcher (its
        reference: distances as ‖z‖²+‖e‖²−2z·e, the first arg-min — the official computation)."""
        b, c = z.shape[:2]
        z_nc = z.permute(0, 2, 3, 1).reshape(-1, c)
        kernels = self.kernels or default_dispatcher()
        return kernels("vq_nearest", z_nc, self.embedding.weight).view(b, -1)

    def residual_steps(self, f: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The residual quantization of a latent (B, C, S, S), scale by scale: yields (indices (B, pn²), f_hat
        so far). f_hat carries gradients to the codebook and φ; the residual is updated without them."""
        pns, last = self.patch_nums, len(self.patch_nums) - 1
        side = f.shape[-1]
        f_rest, f_hat = f.detach().clone(), torch.zeros_like(f.detach())
        for k, pn in enumerate(pns):
            z = F.interpolate(f_rest, size=(pn, pn), mode="area") if k != last else f_rest
            idx = self.nearest(z)
            h = self.lookup(idx, pn)
            if k != last:
                h = F.interpolate(h, size=(side, side), mode="bicubic")
            h = self.phi(k, h)
            f_hat = f_hat + h
            f_rest = f_rest - h.detach()
            yield idx, f_hat

    def encode(self, f: torch.Tensor, to_fhat: bool = False) -> list[torch.Tensor]:
        """Latent (B, C, S, S) → per-scale indices, or the cumulative f_hat after each scale."""
        return [f_hat if to_fhat else idx for idx, f_hat in self.residual_steps(f)]

    def indices_to_fhat(self, indices: Sequence[torch.Tensor], last_one: bool = True) -> list[torch.Tensor]:
        """Per-scale indices → f_hat (the last, or after every scale)."""
        pns, last = self.patch_nums, len(self.patch_nums) - 1
        side = pns[-1]
        b = indices[0].shape[0]
        f_hat = torch.zeros(b, self.cfg.z_channels, side, side, dtype=torch.float32, device=indices[0].device)
        partial = []
        for k, idx in enumerate(indices):
            pn = round(idx.shape[1] ** 0.5)
            h = self.lookup(idx, pn)
            if k != last:
                h = F.interpolate(h, size=(side, side), mode="bicubic")
            f_hat = f_hat + self.phi(k, h)
            partial.append(f_hat)
        return partial[-1:] if last_one else partial

    def teacher_forcing_input(self, indices: Sequence[torch.Tensor]) -> torch.Tensor:
        """Indices of scales 0..K−1 → the transformer's input for scales 1..K−1, (B, L − 1, C)."""
        pns = self.patch_nums
        side = pns[-1]
        b = indices[0].shape[0]
        f_hat = torch.zeros(b, self.cfg.z_channels, side, side, dtype=torch.float32, device=indices[0].device)
        nxt = []
        for k in range(len(pns) - 1):
            h = F.interpolate(self.lookup(indices[k], pns[k]), size=(side, side), mode="bicubic")
            f_hat = f_hat + self.phi(k, h)
            pn = pns[k + 1]
            nxt.append(F.interpolate(f_hat, size=(pn, pn), mode="area").reshape(b, self.cfg.z_channels, -1)
                       .transpose(1, 2))
        return torch.cat(nxt, dim=1)

    def next_input(self, k: int, f_hat: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add scale k's codes (B, C, pn, pn) into f_hat; return (f_hat, next scale's area-resized map)."""
        pns, last = self.patch_nums, len(self.patch_nums) - 1
        side = pns[-1]
        if k != last:
            f_hat = f_hat + self.phi(k, F.interpolate(h, size=(side, side), mode="bicubic"))
            return f_hat, F.interpolate(f_hat, size=(pns[k + 1], pns[k + 1]), mode="area")
        f_hat = f_hat + self.phi(k, h)
        return f_hat, f_hat


class VQVAE(nn.Module):
    """Encoder + quantizer + decoder, with ``quant_conv``/``post_quant_conv`` as in the official layout."""

    def __init__(self, cfg: VQVAEConfig, kernels: Any = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quantize = MultiScaleQuantizer(cfg, kernels)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.z_channels, 3, padding=1)
        self.post_quant_conv = nn.Conv2d(cfg.z_channels, cfg.z_channels, 3, padding=1)

    def encode_latent(self, img: torch.Tensor) -> torch.Tensor:
        return self.quant_conv(self.encoder(img))

    def img_to_indices(self, img: torch.Tensor) -> list[torch.Tensor]:
        return self.quantize.encode(self.encode_latent(img))

    def fhat_to_img(self, f_hat: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(f_hat)).clamp_(-1, 1)

    def indices_to_img(self, indices: Sequence[torch.Tensor], last_one: bool = True) -> list[torch.Tensor]:
        return [self.fhat_to_img(f) for f in self.quantize.indices_to_fhat(indices, last_one)]
