"""What a model family's factory returns to the engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from .specs import ModelSpec
from .weights import ResolvedWeights


@dataclass
class GenerativeModel:
    """A family's networks plus what samplers need to drive them.

    Families subclass this and add the paradigm's methods (see the protocols in ``genloom.samplers``):
    a one-step model provides ``noise_shape`` and ``generate(z, labels)``; a diffusion model provides its
    denoiser and noise schedule; a next-scale model its transformer, VQVAE and scale schedule.
    ``networks`` are moved and cast together by :meth:`to`.
    """

    spec: ModelSpec
    networks: Mapping[str, torch.nn.Module]
    weights: list[ResolvedWeights] = field(default_factory=list)
    config: Any = None

    @property
    def device(self) -> torch.device:
        for net in self.networks.values():
            for p in net.parameters():
                return p.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        for net in self.networks.values():
            for p in net.parameters():
                return p.dtype
        return torch.float32

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> GenerativeModel:
        for net in self.networks.values():
            current = next((p.dtype for p in net.parameters()), None)
            if dtype is None or dtype == current:  # a no-op cast would make diffusers models warn
                net.to(device=device)
            else:
                net.to(device=device, dtype=dtype)
        return self

    def weights_manifest(self) -> list[dict[str, str]]:
        return [{"source": w.source, "file": w.path.name, "sha256": w.sha256} for w in self.weights]
