"""Latent autoencoders shared by the latent families: diffusers ``AutoencoderKL`` files, plain (SD's KL-f8,
e.g. sd-vae-ft-ema) or self-describing (the embedded ``shapes-ae`` keeps its config and latent scaling factor in
its safetensors metadata)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import torch

from . import weights

SD_VAE_SCALE = 0.18215
SD_VAE_CONFIG = {"in_channels": 3, "out_channels": 3, "latent_channels": 4,
                 "block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "norm_num_groups": 32,
                 "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4,
                 "sample_size": 256}


def load_autoencoder(sd: Mapping[str, torch.Tensor], config: Mapping[str, Any] | None = None,
                     device: Any = "cpu", dtype: torch.dtype | None = None) -> torch.nn.Module:
    """A diffusers ``AutoencoderKL`` (SD KL-f8 config unless ``config`` says otherwise), strictly loaded."""
    from diffusers import AutoencoderKL

    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(SD_VAE_CONFIG, **(config or {})).items()}
    return weights.build_and_load(lambda: AutoencoderKL(**cfg), weights.float32_state(sd), device=device, dtype=dtype,
                                  what="AutoencoderKL checkpoint")


def autoencoder_description(path: str | Any) -> tuple[dict[str, Any] | None, float]:
    """(config, latent scaling factor) a self-describing autoencoder file declares in its metadata (shapes-ae);
    (None, SD's 0.18215) for plain files such as sd-vae-ft-ema."""
    meta = weights.read_metadata(path)
    config = json.loads(meta["autoencoder_config"]) if "autoencoder_config" in meta else None
    return config, float(meta.get("scaling_factor", SD_VAE_SCALE))


def load_autoencoder_file(path: str | Any, config: Mapping[str, Any] | None = None, device: Any = "cpu",
                          dtype: torch.dtype | None = None) -> tuple[torch.nn.Module, float]:
    """An ``AutoencoderKL`` from a file (its own metadata's config unless ``config`` is given) and its scale."""
    declared, scale = autoencoder_description(path)
    return load_autoencoder(weights.read_state_dict(path), config or declared, device, dtype), scale


def encode_means(vae: torch.nn.Module, images: torch.Tensor, scale: float = 1.0, batch: int = 256) -> torch.Tensor:
    """Posterior means × ``scale`` of images in [-1, 1], encoded ``batch`` at a time on the autoencoder's device and
    returned on the images' device (a dataset never has to fit on the accelerator at once)."""
    device = next(vae.parameters()).device
    return torch.cat([(vae.encode(images[i:i + batch].to(device)).latent_dist.mean * scale).to(images.device)
                      for i in range(0, len(images), batch)])
