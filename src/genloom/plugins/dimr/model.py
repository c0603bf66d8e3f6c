"""DiMR as a genloom diffusion model: the network behind :class:`genloom.samplers.diffusion.DiffusionModel`,
in pixel space or in the latent space of a diffusers ``AutoencoderKL``, and its loader."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ...engine import weights
from ...engine.errors import WeightsError
from ...samplers.diffusion import NoiseSchedule
from ...samplers.latent import LatentDiffusionModel
from .config import DiMRConfig, infer_dimr_config
from .network import DiMRNetwork, tau_from_time

# the official training schedule: SD "scaled linear" betas, ε-prediction, DiMR time n = diffusers timestep + 1
DIMR_SCHEDULE = NoiseSchedule(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                              beta_end=0.012, prediction_type="eps", timestep_offset=1)
@dataclass
class DiMRModel(LatentDiffusionModel):
    """Implements the diffusion-model protocol; ``networks["vae"]`` present means latent space."""

    noise_schedule: NoiseSchedule = DIMR_SCHEDULE
    denoiser_key: ClassVar[str] = "dimr"

    @property
    def net(self) -> DiMRNetwork:
        return self.networks["dimr"]  # type: ignore[return-value]

    @property
    def latent_shape(self) -> tuple[int, ...]:
        c: DiMRConfig = self.config
        return (c.channels, c.input_size, c.input_size)

    def denoise(self, x: torch.Tensor, timesteps: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.net(*self._inputs(x, timesteps, labels))[-1]

    def denoise_features(self, x: torch.Tensor, timesteps: torch.Tensor,
                         labels: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The finest stage's prediction and the coarsest stage's hand-off features ``(B, C, h, w)``."""
        outputs, coarsest = self.net.forward_features(*self._inputs(x, timesteps, labels))
        return outputs[-1], [coarsest.permute(0, 3, 1, 2)]

    def _inputs(self, x: torch.Tensor, timesteps: torch.Tensor,
                labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if labels is None:  # an unconditional DiMR only has the null row
            labels = torch.full((x.shape[0],), self.config.null_label, dtype=torch.long, device=x.device)
        return x, tau_from_time(timesteps + self.noise_schedule.timestep_offset).to(x.device), labels


def load_dimr(sd: Mapping[str, torch.Tensor], config: DiMRConfig | None = None, num_heads: int | None = None,
              device: Any = "cpu", dtype: torch.dtype | None = None) -> tuple[DiMRNetwork, DiMRConfig]:
    """Build on the meta device from an official-layout state dict and load strictly."""
    sd = weights.float32_state(sd)
    if config is None:
        config = infer_dimr_config(sd, num_heads=num_heads)
    elif not isinstance(config, DiMRConfig):
        raise WeightsError(f"config= for DiMR must be a genloom DiMRConfig, got {type(config).__name__}.")
    net = weights.build_and_load(lambda: DiMRNetwork(config), sd, device=device, dtype=dtype,
                                 what="DiMR checkpoint")
    return net, config
