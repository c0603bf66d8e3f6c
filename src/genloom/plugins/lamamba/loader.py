"""The ``ModelSpec`` factory of the LaMamba family."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...engine import weights
from ...engine.errors import WeightsError
from ...engine.options import dataclass_from_mapping
from ...samplers.latent import attach_autoencoder, checkpoint_spec, noise_schedule_from
from .config import LaMambaConfig
from .model import DIT_SCHEDULE, LaMambaModel, load_lamamba


def build(options: Any) -> LaMambaModel:
    if options.weights is None:
        raise WeightsError(f"Model {options.name!r} needs weights (weights=, CLI --weights): a LaMamba-Diff state "
                           f"dict (the official checkpoint's 'ema' entry, as .safetensors).")
    sd = weights.read_state_dict(options.weights.path)
    config = options.config
    if isinstance(config, Mapping):  # --config FILE / config={...}
        config = dataclass_from_mapping(LaMambaConfig, config, "config")
    net, config = load_lamamba(sd, config, kernels=options.kernels, device=options.device, dtype=options.dtype)
    networks: dict[str, Any] = {"lamamba": net}
    files = [options.weights]
    vae_scale, downsample = attach_autoencoder(options, networks, files, config.in_channels, "LaMamba")
    conditional = config.table_rows > config.num_classes
    spec = checkpoint_spec(options, config.num_classes, config.null_label if conditional else None,
                           config.latent_size * downsample)
    schedule = noise_schedule_from(options, DIT_SCHEDULE)
    if schedule.learned_variance != config.learn_sigma:
        from dataclasses import replace

        schedule = replace(schedule, learned_variance=config.learn_sigma)
    return LaMambaModel(spec=spec, networks=networks, weights=files, config=config, noise_schedule=schedule,
                        vae_scale=vae_scale)
