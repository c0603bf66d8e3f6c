"""The ``ModelSpec`` factory of the LaMamba family."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ...samplers.latent import attach_autoencoder, checkpoint_spec, noise_schedule_from, read_checkpoint
from .config import LaMambaConfig
from .model import DIT_SCHEDULE, LaMambaModel, load_lamamba


def build(options: Any) -> LaMambaModel:
    sd, config = read_checkpoint(options, LaMambaConfig, "a LaMamba-Diff state dict (the official checkpoint's 'ema' "
                                 "entry, as .safetensors)")
    net, config = load_lamamba(sd, config, kernels=options.kernels, device=options.device, dtype=options.dtype)
    networks: dict[str, Any] = {"lamamba": net}
    files = [options.weights]
    vae_scale, downsample = attach_autoencoder(options, networks, files, config.in_channels, "LaMamba")
    conditional = config.table_rows > config.num_classes
    spec = checkpoint_spec(options, config.num_classes, config.null_label if conditional else None,
                           config.latent_size * downsample)
    schedule = replace(noise_schedule_from(options, DIT_SCHEDULE), learned_variance=config.learn_sigma)
    return LaMambaModel(spec=spec, networks=networks, weights=files, config=config, noise_schedule=schedule,
                        vae_scale=vae_scale)
