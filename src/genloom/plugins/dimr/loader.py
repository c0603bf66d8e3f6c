"""The ``ModelSpec`` factory of the DiMR family."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ...engine import weights
from ...engine.autoencoder import SD_VAE_SCALE, load_autoencoder_file
from ...engine.errors import InvalidRequest, WeightsError
from ...engine.options import dataclass_from_mapping
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
    vae_scale = SD_VAE_SCALE
    vae_ref = options.extra.get("vae") or options.spec.extra.get("vae")
    if vae_ref is not None:
        vae_file = weights.resolve(vae_ref)
        networks["vae"], vae_scale = load_autoencoder_file(vae_file.path, options.extra.get("vae_config"),
                                                           device=options.device, dtype=options.dtype)
        files.append(vae_file)
        downsample = 2 ** (len(networks["vae"].config.block_out_channels) - 1)
    elif config.channels == 3:
        downsample = 1
    else:
        raise WeightsError(f"This DiMR works on {config.channels}-channel latents; pass vae= (CLI --vae): a "
                           f"diffusers AutoencoderKL checkpoint, e.g. sd-vae-ft-ema or shapes_ae.safetensors.")
    conditional = config.num_classes > 1
    spec = replace(options.spec, num_classes=config.num_classes - 1 if conditional else 0,
                   null_class=config.null_label if conditional else None,
                   image_size=config.input_size * downsample,
                   class_names=options.spec.class_names if conditional else (),
                   default_guidance=options.spec.default_guidance if conditional else None,
                   default_guidance_scale=options.spec.default_guidance_scale if conditional else None)
    noise = options.extra.get("noise_schedule") or options.spec.extra.get("noise_schedule")
    try:
        schedule = replace(DIMR_SCHEDULE, **noise) if noise else DIMR_SCHEDULE
    except TypeError as exc:
        raise InvalidRequest(f"noise_schedule takes NoiseSchedule fields (beta_schedule, beta_start, ...): {exc}")
    schedule.betas()  # an unknown beta_schedule fails here, at load
    return DiMRModel(spec=spec, networks=networks, weights=files, config=config, noise_schedule=schedule,
                     vae_scale=vae_scale)
