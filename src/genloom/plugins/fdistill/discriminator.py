"""The density-ratio head (spec §4.4): per feature map, stride-2 4×4 convolutions + GroupNorm + SiLU down to 4×4,
a convolution over the whole 4×4 map to 1×1, GroupNorm + SiLU, a 1×1 convolution to one logit; the logits of all
maps are averaged. On an 8×8 map this is exactly DMD2's / FastGen's head; smaller maps skip the first stage."""

from __future__ import annotations

import torch
from torch import nn


def _group_norm(channels: int) -> nn.GroupNorm:
    groups = max(g for g in range(1, 33) if channels % g == 0)  # 32 groups, or the largest divisor below
    return nn.GroupNorm(groups, channels)


class HeadBranch(nn.Module):
    """One feature map ``(B, C, s, s)`` → one logit per sample."""

    def __init__(self, channels: int, side: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        while side > 4:
            layers += [nn.Conv2d(channels, channels, 4, stride=2, padding=1), _group_norm(channels), nn.SiLU()]
            side = (side + 1) // 2
        layers += [nn.Conv2d(channels, channels, side), _group_norm(channels), nn.SiLU(), nn.Conv2d(channels, 1, 1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.layers(feature).flatten(1).mean(1)


class RatioHead(nn.Module):
    """Logits ``ℓ ≈ log(p_teacher / q_student)`` from a teacher's feature maps (their heads' mean)."""

    def __init__(self, shapes: list[tuple[int, int, int]]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(HeadBranch(c, max(h, w)) for c, h, w in shapes)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([b(f) for b, f in zip(self.branches, features, strict=True)]).mean(0)
