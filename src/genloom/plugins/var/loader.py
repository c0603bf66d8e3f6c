"""The ``ModelSpec`` factory of the VAR family."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ...engine import weights
from ...engine.errors import WeightsError
from ...engine.options import dataclass_from_mapping
from .config import VARConfig
from .model import VARModel, load_var


def build(options: Any) -> VARModel:
    if options.weights is None:
        raise WeightsError(f"Model {options.name!r} needs weights (weights=, CLI --weights): the VAR transformer "
                           f"checkpoint (.pth/.safetensors).")
    vae_ref = options.extra.get("vae") or options.spec.extra.get("vae")
    if vae_ref is None:
        raise WeightsError("VAR needs its multi-scale VQVAE: pass vae= (CLI --vae), e.g. vae_ch160v4096z32.pth.")
    vae_file = weights.resolve(vae_ref)
    var_sd = weights.read_state_dict(options.weights.path)
    vae_sd = weights.read_state_dict(vae_file.path)
    config = options.config
    if isinstance(config, Mapping):  # --config FILE / config={...}
        config = dataclass_from_mapping(VARConfig, config, "config")
    var, vae, config = load_var(var_sd, vae_sd, config, device=options.device, dtype=options.dtype,
                                kernels=options.kernels)
    spec = replace(options.spec, num_classes=config.num_classes, null_class=config.num_classes,
                   image_size=config.image_size, default_steps=len(config.patch_nums))
    return VARModel(spec=spec, networks={"var": var, "vae": vae}, weights=[options.weights, vae_file],
                    config=config)
