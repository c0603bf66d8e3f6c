"""LaMamba-Diff configurations: any U-Net layout the official code builds, the released XL yaml, and inference
of everything a checkpoint's shapes determine (only the window size of a model whose every map fits in one
window is not determined — any window that large behaves identically)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from ...engine.errors import InvalidRequest, WeightsError


def _per_stage(value: int | tuple[int, ...], n: int, name: str) -> tuple[int, ...]:
    values = (value,) * n if isinstance(value, int) else tuple(value)
    if len(values) != n:
        raise InvalidRequest(f"LaMambaConfig.{name} needs one value per stage ({n}), got {len(values)}.")
    return values


@dataclass(frozen=True)
class LaMambaConfig:
    """A whole LaMamba-Diff U-Net. ``dims``: encoder stage widths (a stage whose successor is twice as wide ends
    with a patch merging; the decoder mirrors it with a patch expanding). Per-stage ``num_heads`` and
    ``ssm_dt_rank`` (an int applies to every stage; ``None`` dt rank = ⌈width/16⌉, the official "auto").
    ``decoder_depths[i]`` is ``layers_up.i`` (deepest first; the official SD-U-Net design: encoder depth + 1).
    ``num_classes`` excludes the null label (= num_classes); 0: unconditional."""

    dims: tuple[int, ...] = (320, 640, 1280, 1280)
    depths: tuple[int, ...] = (2, 2, 2, 2)
    decoder_depths: tuple[int, ...] | None = None
    bottleneck_depth: int = 2
    num_heads: int | tuple[int, ...] = 16
    window_size: int = 8
    patch_size: int = 1
    latent_size: int = 32
    in_channels: int = 4
    ssm_d_state: int = 1
    ssm_ratio: float = 2.0
    ssm_dt_rank: int | tuple[int, ...] | None = None
    ssm_conv: int = 3
    ssm_conv_bias: bool = False
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    learn_sigma: bool = True
    num_classes: int = 1000
    label_table_rows: int | None = None  # num_classes + 1 (the null row) unless a checkpoint says otherwise

    def __post_init__(self) -> None:
        n = len(self.dims)
        if n < 1 or len(self.depths) != n:
            raise InvalidRequest(f"LaMambaConfig needs one depth per stage: dims {self.dims}, depths {self.depths}.")
        for a, b in zip(self.dims, self.dims[1:], strict=False):
            if b not in (a, 2 * a):
                raise InvalidRequest(f"LaMambaConfig.dims {self.dims}: each stage keeps its width or doubles it.")
        object.__setattr__(self, "dims", tuple(self.dims))
        object.__setattr__(self, "depths", tuple(self.depths))
        dec = tuple(d + 1 for d in reversed(self.depths)) if self.decoder_depths is None else \
            tuple(self.decoder_depths)
        if len(dec) != n:
            raise InvalidRequest(f"LaMambaConfig.decoder_depths needs {n} values, got {dec}.")
        object.__setattr__(self, "decoder_depths", dec)
        object.__setattr__(self, "num_heads", _per_stage(self.num_heads, n, "num_heads"))
        ranks = tuple(math.ceil(d / 16) for d in self.dims) if self.ssm_dt_rank is None else \
            _per_stage(self.ssm_dt_rank, n, "ssm_dt_rank")
        object.__setattr__(self, "ssm_dt_rank", ranks)
        for d, h in zip(self.dims, self.num_heads, strict=True):  # type: ignore[arg-type]
            if h < 1 or d % h:
                raise InvalidRequest(f"LaMambaConfig: stage width {d} is not divisible by its {h} heads.")
        self.check_layout()

    # ------------------------------------------------------------------ derived layout
    @property
    def cond_dim(self) -> int:
        return self.dims[-1]

    @property
    def out_channels(self) -> int:
        return 2 * self.in_channels if self.learn_sigma else self.in_channels

    @property
    def null_label(self) -> int:
        return self.num_classes

    @property
    def table_rows(self) -> int:
        return self.label_table_rows if self.label_table_rows is not None else self.num_classes + 1

    def downsamples(self, i: int) -> bool:
        """Encoder stage ``i`` ends with a patch merging (its successor is twice as wide)."""
        return i + 1 < len(self.dims) and self.dims[i + 1] == 2 * self.dims[i]

    def resolutions(self) -> list[int]:
        """Map side of every encoder stage."""
        side = self.latent_size // self.patch_size
        sides = []
        for i in range(len(self.dims)):
            sides.append(side)
            if self.downsamples(i):
                side //= 2
        return sides

    def check_layout(self) -> None:
        """The latent must tile into patches, every merging must halve an even map, and windows must tile."""
        if self.latent_size % self.patch_size:
            raise InvalidRequest(f"Latent size {self.latent_size} is not divisible by the patch size "
                                 f"{self.patch_size}; use a latent side that is a multiple of it.")
        side = self.latent_size // self.patch_size
        for i in range(len(self.dims)):
            window = min(self.window_size, side)
            if side % window:
                raise InvalidRequest(f"Stage {i} of LaMamba works on {side}×{side} tokens, which windows of "
                                     f"{self.window_size} do not tile; use a latent size whose stage maps are "
                                     f"multiples of the window (or smaller than it).")
            if self.downsamples(i):
                if side % 2:
                    raise InvalidRequest(f"Stage {i} of LaMamba merges 2×2 patches of a {side}×{side} map (odd); "
                                         f"use a latent size divisible by {self.patch_size * 2 ** (i + 1)}.")
                side //= 2


DEFAULT_XL = LaMambaConfig()  # configs/LaMamba-DIff-XL.yaml, 256 px (latent 32); latent_size=64 for 512 px


def _count(sd: Mapping[str, torch.Tensor], pattern: str) -> int:
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in sd if (m := rx.match(k))}
    return max(found) + 1 if found else 0


def infer_lamamba_config(sd: Mapping[str, torch.Tensor], window_size: int | None = None) -> LaMambaConfig:
    """Every field from a state dict's shapes (official key layout)."""
    try:
        proj = sd["patch_embed.proj.weight"]
        n = _count(sd, r"layers\.(\d+)\.")
        dims = [proj.shape[0]]
        for i in range(n - 1):
            dims.append(dims[-1] * (2 if f"layers.{i}.downsample.reduction.weight" in sd else 1))
        depths = [_count(sd, rf"layers\.{i}\.blocks\.(\d+)\.") for i in range(n)]
        decoder = [_count(sd, rf"layers_up\.{i}\.blocks\.(\d+)\.") for i in range(n)]

        def block_prefix(i: int) -> str:  # a block of encoder stage i (or its decoder mirror)
            return f"layers.{i}.blocks.0." if depths[i] else f"layers_up.{n - 1 - i}.blocks.0."

        heads, ranks, windows = [], [], []
        for i in range(n):
            p = block_prefix(i)
            table = sd[p + "attn.relative_position_bias_table"]
            heads.append(table.shape[1])
            windows.append((math.isqrt(table.shape[0]) + 1) // 2)
            ranks.append(sd[p + "op.dt_projs_weight"].shape[2])
        p = block_prefix(0)
        d_inner = sd[p + "op.in_proj.weight"].shape[0] // 2
        patch = proj.shape[-1]
        side = sd["pos_embed"].shape[1]
        out = sd["final_linear.weight"].shape[0]
        rows = sd["y_embedder.embedding_table.weight"].shape[0]
    except KeyError as exc:
        raise WeightsError(f"Not a LaMamba-Diff checkpoint (official key layout expected): missing {exc}.") from None
    return LaMambaConfig(
        dims=tuple(dims), depths=tuple(depths), decoder_depths=tuple(decoder),
        bottleneck_depth=_count(sd, r"mid_layer\.blocks\.(\d+)\."), num_heads=tuple(heads),
        window_size=window_size or max(windows), patch_size=patch, latent_size=side * patch,
        in_channels=proj.shape[1], ssm_d_state=sd[p + "op.A_logs"].shape[1], ssm_ratio=d_inner / dims[0],
        ssm_dt_rank=tuple(ranks), ssm_conv=sd[p + "op.conv2d.weight"].shape[-1],
        ssm_conv_bias=(p + "op.conv2d.bias") in sd, mlp_ratio=sd[p + "mlp.fc1.weight"].shape[0] / dims[0],
        qkv_bias=(p + "attn.qkv.bias") in sd, learn_sigma=out == 2 * proj.shape[1],
        num_classes=max(rows - 1, 0), label_table_rows=rows)
