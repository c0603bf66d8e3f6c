"""The one-step loop: draw each image's noise from its own generator, run the generator once."""

from __future__ import annotations

from typing import Protocol

import torch

from ..engine.progress import RunContext
from ..engine.sampling import SampleBatch, SampleOutput


class OneStepModel(Protocol):
    """What a one-step family provides (e.g. an f-distill student)."""

    noise_shape: tuple[int, ...]
    device: torch.device
    dtype: torch.dtype

    def generate(self, noise: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """``(B, *noise_shape)`` noise → ``(B, 3, H, W)`` images in [-1, 1]."""
        ...


class OneStepSampler:
    """One network evaluation per image; guidance is refused earlier, at request validation."""

    def sample(self, model: OneStepModel, batch: SampleBatch, ctx: RunContext) -> SampleOutput:
        ctx.check()
        noise = batch.noise(model.noise_shape, device=model.device, dtype=model.dtype)
        images = model.generate(noise, batch.labels)
        ctx.step_done(1, 1)
        return SampleOutput(images=images, nfe=torch.ones(len(batch), dtype=torch.long))
