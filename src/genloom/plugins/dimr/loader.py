"""The ``ModelSpec`` factory of the DiMR family."""

from __future__ import annotations

from typing import Any

from ...samplers.latent import attach_autoencoder, checkpoint_spec, noise_schedule_from, read_checkpoint
from .config import OFFICIAL, DiMRConfig
from .model import DIMR_SCHEDULE, DiMRModel, load_dimr


def build(options: Any) -> DiMRModel:
    sd, config = read_checkpoint(options, DiMRConfig, "a DiMR checkpoint (.pth/.safetensors)")
    if config is None and "official" in options.spec.extra:  # a released model: its config, not a guess
        config = OFFICIAL[options.spec.extra["official"]]
    heads = options.extra.get("num_heads") or options.spec.extra.get("num_heads")
    net, config = load_dimr(sd, config, num_heads=heads, device=options.device, dtype=options.dtype)
    networks: dict[str, Any] = {"dimr": net}
    files = [options.weights]
    vae_scale, downsample = attach_autoencoder(options, networks, files, config.channels, "DiMR")
    conditional = config.num_classes > 1
    spec = checkpoint_spec(options, config.num_classes - 1 if conditional else 0,
                           config.null_label if conditional else None, config.input_size * downsample)
    return DiMRModel(spec=spec, networks=networks, weights=files, config=config,
                     noise_schedule=noise_schedule_from(options, DIMR_SCHEDULE), vae_scale=vae_scale)
