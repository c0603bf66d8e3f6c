"""VAR configurations: public dataclasses mapping one-to-one onto the official constructor arguments.

Whatever a checkpoint's shapes determine is inferred from it (:func:`infer_var_config`,
:func:`infer_vqvae_config`); the rest (patch_nums when ambiguous, flags) can be given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from ...engine.errors import InvalidRequest, WeightsError

PATCH_NUMS_256 = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
PATCH_NUMS_512 = (1, 2, 3, 4, 6, 9, 13, 18, 24, 32)


@dataclass(frozen=True)
class VQVAEConfig:
    """The multi-scale VQVAE (official ``VQVAE(vocab_size, z_channels, ch, share_quant_resi, v_patch_nums)``)."""

    vocab_size: int = 4096
    z_channels: int = 32
    ch: int = 160
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    share_quant_resi: int = 4
    quant_resi: float = 0.5
    patch_nums: tuple[int, ...] = PATCH_NUMS_256
    using_sa: bool = True
    using_mid_sa: bool = True

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)


@dataclass(frozen=True)
class VARConfig:
    """The next-scale transformer (official ``VAR(...)`` / ``build_vae_var(depth=...)`` rule C = 64·depth)."""

    depth: int = 16
    embed_dim: int = 1024
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_classes: int = 1000
    vocab_size: int = 4096
    cvae: int = 32
    patch_nums: tuple[int, ...] = PATCH_NUMS_256
    shared_aln: bool = False
    attn_l2_norm: bool = True
    norm_eps: float = 1e-6
    vae: VQVAEConfig = field(default_factory=VQVAEConfig)

    @classmethod
    def from_depth(cls, depth: int, **kw: object) -> VARConfig:
        """The official width rule: C = 64·depth, heads = depth."""
        return cls(depth=depth, embed_dim=64 * depth, num_heads=depth, **kw)  # type: ignore[arg-type]

    @property
    def image_size(self) -> int:
        return self.patch_nums[-1] * self.vae.downsample

    @property
    def seq_len(self) -> int:
        return sum(p * p for p in self.patch_nums)


def check_patch_nums(patch_nums: tuple[int, ...]) -> None:
    if len(patch_nums) < 2:
        raise InvalidRequest(
            f"A VAR scale schedule needs at least 2 scales (got {list(patch_nums)}); the official code divides by "
            f"K−1 when mapping scales to φ convolutions."
        )
    if patch_nums[0] != 1 or any(b <= a for a, b in zip(patch_nums, patch_nums[1:])):
        raise InvalidRequest(f"patch_nums must start at 1 and increase strictly, got {list(patch_nums)}.")


def phi_index_map(num_scales: int, num_phi: int) -> list[int]:
    """Which φ convolution serves each scale: the official float64 arg-min over ticks (first index on ties).

    Reproduces the spec's table exactly (K=10, N=4 → 0 0 1 1 1 2 2 3 3 3); float64 numpy is what the official
    code evaluates, and its rounding resolves the exact mathematical ties at 2/9 and 7/9 upward.
    """
    if num_phi == 1:
        return [0] * num_scales
    if num_scales < 2:
        raise InvalidRequest("A scale schedule needs K ≥ 2 scales.")
    n = num_phi
    lo = 1 / (3 * n) if n == 4 else 1 / (2 * n)
    ticks = np.linspace(lo, 1 - lo, n)
    return [int(np.argmin(np.abs(ticks - k / (num_scales - 1)))) for k in range(num_scales)]


def infer_vqvae_config(sd: Mapping[str, torch.Tensor], patch_nums: tuple[int, ...] | None = None) -> VQVAEConfig:
    """VQVAE hyper-parameters from a checkpoint's shapes (ch, V, Cvae, ch_mult, blocks, φ sharing)."""
    try:
        vocab, cvae = sd["quantize.embedding.weight"].shape
        ch = sd["encoder.conv_in.weight"].shape[0]
    except KeyError as exc:
        raise WeightsError(f"Not a VAR VQVAE checkpoint: key {exc} is missing.") from None
    levels = sorted({int(k.split(".")[2]) for k in sd if k.startswith("encoder.down.")})
    ch_mult = tuple(sd[f"encoder.down.{i}.block.0.conv1.weight"].shape[0] // ch for i in levels)
    blocks = len({k.split(".")[4] for k in sd if k.startswith("encoder.down.0.block.")})
    if any(k.startswith("quantize.quant_resi.qresi_ls.") for k in sd):
        share = len({k.split(".")[3] for k in sd if k.startswith("quantize.quant_resi.qresi_ls.")})
    elif any(k.startswith("quantize.quant_resi.qresi.") for k in sd):
        share = 1
    else:
        share = 0
    if patch_nums is None:
        k_scales = sd["quantize.ema_vocab_hit_SV"].shape[0] if "quantize.ema_vocab_hit_SV" in sd else 10
        patch_nums = PATCH_NUMS_256 if k_scales == 10 else PATCH_NUMS_256[:k_scales]
    return VQVAEConfig(vocab_size=int(vocab), z_channels=int(cvae), ch=int(ch), ch_mult=ch_mult,
                       num_res_blocks=blocks, share_quant_resi=share, patch_nums=tuple(patch_nums),
                       using_sa=any(".attn." in k for k in sd if k.startswith("encoder.down.")),
                       using_mid_sa="encoder.mid.attn_1.qkv.weight" in sd)


def infer_var_config(sd: Mapping[str, torch.Tensor], vae: VQVAEConfig,
                     patch_nums: tuple[int, ...] | None = None) -> VARConfig:
    """Transformer hyper-parameters from a checkpoint's shapes; the schedule from the position table."""
    try:
        num_classes = sd["class_emb.weight"].shape[0] - 1
        embed_dim = sd["class_emb.weight"].shape[1]
        seq_len = sd["pos_1LC"].shape[1]
        num_scales = sd["lvl_embed.weight"].shape[0]
        vocab = sd["head.weight"].shape[0]
        cvae = sd["word_embed.weight"].shape[1]
    except KeyError as exc:
        raise WeightsError(f"Not a VAR transformer checkpoint: key {exc} is missing.") from None
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    shared = "shared_ada_lin.1.weight" in sd
    l2 = "blocks.0.attn.scale_mul_1H11" in sd
    heads = sd["blocks.0.attn.scale_mul_1H11"].shape[1] if l2 else max(1, embed_dim // 64)
    mlp = sd["blocks.0.ffn.fc1.weight"].shape[0] / embed_dim
    if patch_nums is None:
        patch_nums = _schedule_for(seq_len, num_scales, sd)
    if sum(p * p for p in patch_nums) != seq_len or len(patch_nums) != num_scales:
        raise WeightsError(
            f"patch_nums {list(patch_nums)} ({sum(p * p for p in patch_nums)} tokens, {len(patch_nums)} scales) do "
            f"not match the checkpoint ({seq_len} tokens, {num_scales} scales); pass the training schedule."
        )
    return VARConfig(depth=depth, embed_dim=int(embed_dim), num_heads=int(heads), mlp_ratio=mlp,
                     num_classes=int(num_classes), vocab_size=int(vocab), cvae=int(cvae),
                     patch_nums=tuple(patch_nums), shared_aln=shared, attn_l2_norm=l2,
                     vae=VQVAEConfig(**{**vae.__dict__, "patch_nums": tuple(patch_nums)}))


def _schedule_for(seq_len: int, num_scales: int, sd: Mapping[str, torch.Tensor]) -> tuple[int, ...]:
    for known in (PATCH_NUMS_256, PATCH_NUMS_512):
        if sum(p * p for p in known) == seq_len and len(known) == num_scales:
            return known
    if "lvl_1L" in sd:  # the per-token scale index gives every scale's token count
        counts = torch.bincount(sd["lvl_1L"].flatten().long(), minlength=num_scales).tolist()
        sides = [math.isqrt(c) for c in counts]
        if all(s * s == c for s, c in zip(sides, counts)):
            return tuple(sides)
    raise WeightsError(f"Cannot infer the scale schedule ({seq_len} tokens, {num_scales} scales); pass patch_nums=.")
