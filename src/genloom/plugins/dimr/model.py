"""DiMR as a genloom diffusion model: the network behind :class:`genloom.samplers.diffusion.DiffusionModel`,
in pixel space or in the latent space of a diffusers ``AutoencoderKL``, and its loader."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ...engine import weights
from ...engine.errors import WeightsError
from ...engine.model import GenerativeModel
from ...samplers.diffusion import NoiseSchedule
from .config import DiMRConfig, infer_dimr_config
from .network import DiMRNetwork, tau_from_time

# the official training schedule: SD "scaled linear" betas, ε-prediction, DiMR time n = diffusers timestep + 1
DIMR_SCHEDULE = NoiseSchedule(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                              beta_end=0.012, prediction_type="eps", timestep_offset=1)
SD_VAE_SCALE = 0.18215
SD_VAE_CONFIG = {"in_channels": 3, "out_channels": 3, "latent_channels": 4,
                 "block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "norm_num_groups": 32,
                 "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4,
                 "sample_size": 256}


@dataclass
class DiMRModel(GenerativeModel):
    """Implements the diffusion-model protocol; ``networks["vae"]`` present means latent space."""

    noise_schedule: NoiseSchedule = DIMR_SCHEDULE
    vae_scale: float = SD_VAE_SCALE

    @property
    def net(self) -> DiMRNetwork:
        return self.networks["dimr"]  # type: ignore[return-value]

    @property
    def latent_shape(self) -> tuple[int, ...]:
        c: DiMRConfig = self.config
        return (c.channels, c.input_size, c.input_size)

    @property
    def null_class(self) -> int | None:
        return self.spec.null_class

    def denoise(self, x: torch.Tensor, timesteps: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if labels is None:  # an unconditional DiMR only has the null row
            labels = torch.full((x.shape[0],), self.config.null_label, dtype=torch.long, device=x.device)
        tau = tau_from_time(timesteps + self.noise_schedule.timestep_offset)
        return self.net(x, tau.to(x.device), labels)[-1]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        if "vae" not in self.networks:
            return latents.clamp(-1, 1)
        vae = self.networks["vae"]
        return vae.decode(latents / self.vae_scale).sample.clamp(-1, 1)  # type: ignore[operator]


def _float32(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}


def load_dimr(sd: Mapping[str, torch.Tensor], config: DiMRConfig | None = None, num_heads: int | None = None,
              device: Any = "cpu", dtype: torch.dtype | None = None) -> tuple[DiMRNetwork, DiMRConfig]:
    """Build on the meta device from an official-layout state dict and load strictly."""
    sd = _float32(sd)
    if config is None:
        config = infer_dimr_config(sd, num_heads=num_heads)
    elif not isinstance(config, DiMRConfig):
        raise WeightsError(f"config= for DiMR must be a genloom DiMRConfig, got {type(config).__name__}.")
    net = weights.build_and_load(lambda: DiMRNetwork(config), sd, device=device, dtype=dtype,
                                 what="DiMR checkpoint")
    return net, config


def load_autoencoder(sd: Mapping[str, torch.Tensor], config: Mapping[str, Any] | None = None,
                     device: Any = "cpu", dtype: torch.dtype | None = None) -> torch.nn.Module:
    """A diffusers ``AutoencoderKL`` (SD KL-f8 config unless ``config`` says otherwise), strictly loaded."""
    from diffusers import AutoencoderKL

    cfg = dict(SD_VAE_CONFIG, **(config or {}))
    return weights.build_and_load(lambda: AutoencoderKL(**cfg), _float32(sd), device=device, dtype=dtype,
                                  what="AutoencoderKL checkpoint")
