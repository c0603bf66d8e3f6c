"""The ``ModelSpec`` factory of the DiMR family."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ...engine import weights
from ...engine.errors import InvalidRequest, WeightsError
from .config import OFFICIAL
from .model import DIMR_SCHEDULE, DiMRModel, load_autoencoder, load_dimr

LOAD_OPTIONS = {"vae", "vae_config", "num_heads", "noise_schedule"}


def build(options: Any) -> DiMRModel:
    unknown = set(options.extra) - LOAD_OPTIONS
    if unknown:
        raise InvalidRequest(f"Unknown load option(s) for DiMR: {sorted(unknown)}; DiMR takes {sorted(LOAD_OPTIONS)} "
                             f"and config=.")
    if options.weights is None:
        raise WeightsError(f"Model {options.name!r} needs weights=: a DiMR checkpoint (.pth/.safetensors).")
    sd = weights.read_state_dict(options.weights.path)
    config = options.config
    if config is None and "official" in options.spec.extra:  # a released model: its config, not a guess
        config = OFFICIAL[options.spec.extra["official"]]
    heads = options.extra.get("num_heads") or options.spec.extra.get("num_heads")
    net, config = load_dimr(sd, config, num_heads=heads, device=options.device, dtype=options.dtype)
    networks: dict[str, Any] = {"dimr": net}
    files = [options.weights]
    vae_ref = options.extra.get("vae") or options.spec.extra.get("vae")
    if vae_ref is not None:
        vae_file = weights.resolve(vae_ref)
        networks["vae"] = load_autoencoder(weights.read_state_dict(vae_file.path), options.extra.get("vae_config"),
                                           device=options.device, dtype=options.dtype)
        files.append(vae_file)
        downsample = 2 ** (len(networks["vae"].config.block_out_channels) - 1)
    elif config.channels == 3:
        downsample = 1
    else:
        raise WeightsError(f"This DiMR works on {config.channels}-channel latents; pass vae= (a diffusers "
                           f"AutoencoderKL checkpoint, e.g. sd-vae-ft-ema) to decode them.")
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
        raise InvalidRequest(f"noise_schedule= takes NoiseSchedule fields (beta_schedule, beta_start, ...): {exc}")
    schedule.betas()  # an unknown beta_schedule fails here, at load
    return DiMRModel(spec=spec, networks=networks, weights=files, config=config, noise_schedule=schedule)
