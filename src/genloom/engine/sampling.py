"""The contract between the pipeline and a paradigm's sampling loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from .progress import RunContext
from .seeding import ImageRNG


@dataclass
class SampleBatch:
    """One batch to generate: labels (``None`` for unconditional models), noise source, policy, steps."""

    labels: torch.Tensor | None
    rng: ImageRNG
    steps: int
    policy: Any = None
    options: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rng)


@dataclass
class SampleOutput:
    """Images in [-1, 1], ``(B, 3, H, W)``, and the network evaluations each image cost."""

    images: torch.Tensor
    nfe: torch.Tensor
    telemetry: dict[str, Any] = field(default_factory=dict)


class Sampler(Protocol):
    """What a ``SamplerSpec`` factory returns."""

    def sample(self, model: Any, batch: SampleBatch, ctx: RunContext) -> SampleOutput: ...
