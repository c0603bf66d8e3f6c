"""The contract between the pipeline and a paradigm's sampling loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .seeding import ImageRNG


@dataclass
class SampleBatch:
    """One batch to generate: labels (``None`` for unconditional models), noise source, policy, steps.
    ``initial_noise``: the caller's starting noise (``latents=``), used instead of drawing it; ``decode``
    False: return the final latents instead of images (``output_type="latent"``)."""

    labels: torch.Tensor | None
    rng: ImageRNG
    steps: int
    policy: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    initial_noise: torch.Tensor | None = None
    decode: bool = True

    def __len__(self) -> int:
        return len(self.rng)

    def noise(self, shape: tuple[int, ...], device: Any, dtype: torch.dtype) -> torch.Tensor:
        """The starting noise ``(B, *shape)``: the caller's, or drawn from each image's own stream."""
        if self.initial_noise is not None:
            return self.initial_noise.to(device=device, dtype=dtype)
        return self.rng.randn(shape, device=device, dtype=dtype)

    def finish(self, model: Any, latents: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] through the model's decoder, or the latents themselves when not decoding."""
        return model.decode(latents) if self.decode else latents


@dataclass
class SampleOutput:
    """Images in [-1, 1], ``(B, 3, H, W)`` (or the final latents when the batch asked for them), and the
    network evaluations each image cost."""

    images: torch.Tensor
    nfe: torch.Tensor
    telemetry: dict[str, Any] = field(default_factory=dict)
