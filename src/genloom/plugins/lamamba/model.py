"""LaMamba-Diff as a genloom diffusion model (DiT's diffusion: linear betas, ε, learned-range variance) and the
strict loader of official-layout state dicts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ...engine import weights
from ...engine.errors import WeightsError
from ...samplers.diffusion import NoiseSchedule
from ...samplers.latent import LatentDiffusionModel
from .config import LaMambaConfig, infer_lamamba_config
from .network import LaMambaNetwork

# DiT's create_diffusion: 1000 linear betas 1e-4 → 0.02, ε, learned-range σ, respaced steps round(i·999/(n−1))
DIT_SCHEDULE = NoiseSchedule(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                             prediction_type="eps", learned_variance=True, timestep_spacing="linspace")


@dataclass
class LaMambaModel(LatentDiffusionModel):
    """The diffusion-model protocol over :class:`LaMambaNetwork`; the network sees DiT's float timesteps."""

    noise_schedule: NoiseSchedule = DIT_SCHEDULE
    denoiser_key: ClassVar[str] = "lamamba"

    @property
    def net(self) -> LaMambaNetwork:
        return self.networks["lamamba"]  # type: ignore[return-value]

    @property
    def latent_shape(self) -> tuple[int, ...]:
        c: LaMambaConfig = self.config
        return (c.in_channels, c.latent_size, c.latent_size)

    def denoise(self, x: torch.Tensor, timesteps: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.net(*self._inputs(x, timesteps, labels))

    def denoise_features(self, x: torch.Tensor, timesteps: torch.Tensor,
                         labels: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The prediction and the bottleneck's output map ``(B, C, h, w)``."""
        out, mid = self.net.forward_features(*self._inputs(x, timesteps, labels))
        return out, [mid.permute(0, 3, 1, 2)]

    def _inputs(self, x: torch.Tensor, timesteps: torch.Tensor,
                labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if labels is None:
            labels = torch.full((x.shape[0],), self.config.null_label, dtype=torch.long, device=x.device)
        return x, (timesteps + self.noise_schedule.timestep_offset).to(x.device), labels


def load_lamamba(sd: Mapping[str, torch.Tensor], config: LaMambaConfig | None = None, kernels: Any = None,
                 device: Any = "cpu", dtype: torch.dtype | None = None) -> tuple[LaMambaNetwork, LaMambaConfig]:
    """Build on the meta device from an official-layout state dict (the ``ema`` entry) and load strictly."""
    sd = weights.float32_state(sd)
    if config is None:
        config = infer_lamamba_config(sd)
    elif not isinstance(config, LaMambaConfig):
        raise WeightsError(f"config= for LaMamba must be a genloom LaMambaConfig, got {type(config).__name__}.")
    net = weights.build_and_load(lambda: LaMambaNetwork(config, kernels), sd, device=device, dtype=dtype,
                                 what="LaMamba checkpoint")
    return net, config
