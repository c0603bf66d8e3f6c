"""The ``ModelSpec`` factory of the DiMR family."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...engine import weights
from ...engine.errors import WeightsError
from ...engine.options import dataclass_from_mapping
from ...samplers.latent import attach_autoencoder, checkpoint_spec, noise_schedule_from
from .config import OFFICIAL, DiMRConfig
from .model import DIMR_SCHEDULE, DiMRModel, load_dimr


def build(options: Any) -> DiMRModel:
    if options.weights is None:
        raise WeightsError(f"Model {options.name!r} needs weights (weights=, CLI --weights): a DiMR checkpoint "
                           f"(.pth/.safetensors).")
    sd = weights.read_state_dict(options.weights.path)
    config = options.config
    if isinstance(config, Mapping):  # --config FILE / config={...}
        config = dataclass_from_mapping(DiMRConfig, config, "config")
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
