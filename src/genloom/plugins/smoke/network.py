"""The smoke generator network: label embedding + noise → 4×4 features → three ×2 conv stages → RGB."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SmokeConfig:
    num_classes: int = 10
    z_dim: int = 32
    width: int = 64
    stages: int = 3  # 4 · 2**stages = image side

    @property
    def image_size(self) -> int:
        return 4 * 2**self.stages


class SmokeGenerator(nn.Module):
    def __init__(self, num_classes: int = 10, z_dim: int = 32, width: int = 64, stages: int = 3) -> None:
        super().__init__()
        self.width = width
        self.class_embed = nn.Embedding(num_classes, z_dim)
        self.fc = nn.Linear(2 * z_dim, width * 16)
        self.stages = nn.ModuleList(
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(width, width, 3, padding=1),
                nn.GroupNorm(8, width),
                nn.SiLU(),
            )
            for _ in range(stages)
        )
        self.to_rgb = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([z, self.class_embed(labels)], dim=1)).view(-1, self.width, 4, 4)
        for stage in self.stages:
            h = stage(h)
        return torch.tanh(self.to_rgb(h))


def config_from_state_dict(sd: dict[str, torch.Tensor]) -> SmokeConfig:
    """Everything the shapes determine, so a checkpoint loads without a config."""
    num_classes, z_dim = sd["class_embed.weight"].shape
    width = sd["to_rgb.weight"].shape[1]
    stages = len({k.split(".")[1] for k in sd if k.startswith("stages.")})
    return SmokeConfig(num_classes=num_classes, z_dim=z_dim, width=width, stages=stages)
