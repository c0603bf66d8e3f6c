"""What every class-conditional diffusion family shares around its network: the optional latent autoencoder
(``vae=``), decoding, the noise schedule a checkpoint was trained with (``noise_schedule=``), and the spec of a
loaded checkpoint (its classes, null label and image size). DiMR and LaMamba both build on it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch

from ..engine import weights
from ..engine.autoencoder import SD_VAE_SCALE, encode_means, load_autoencoder_file
from ..engine.errors import InvalidRequest, WeightsError
from ..engine.model import GenerativeModel
from ..engine.options import dataclass_from_mapping
from .diffusion import NoiseSchedule


@dataclass
class LatentDiffusionModel(GenerativeModel):
    """A diffusion model in pixel space, or in an ``AutoencoderKL``'s latent space when ``networks["vae"]``
    exists (latents are divided by ``vae_scale`` before decoding)."""

    noise_schedule: NoiseSchedule = NoiseSchedule()
    vae_scale: float = SD_VAE_SCALE
    #: the key of ``networks`` that :meth:`denoise` runs (the trainable-model protocol)
    denoiser_key: ClassVar[str] = ""

    @property
    def null_class(self) -> int | None:
        return self.spec.null_class

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        if "vae" not in self.networks:
            return latents.clamp(-1, 1)
        vae = self.networks["vae"]
        return vae.decode(latents / self.vae_scale).sample.clamp(-1, 1)  # type: ignore[operator]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] → scaled latents (the posterior mean, encoded in batches on the autoencoder's device,
        returned on the images' device), or the pixels of a pixel-space model."""
        if "vae" not in self.networks:
            return images
        return encode_means(self.networks["vae"], images, self.vae_scale)

    def denoiser(self) -> torch.nn.Module:
        return self.networks[self.denoiser_key]

    def with_denoiser(self, net: torch.nn.Module) -> LatentDiffusionModel:
        return replace(self, networks={**self.networks, self.denoiser_key: net})


def read_checkpoint(options: Any, config_cls: type, what: str) -> tuple[dict[str, torch.Tensor], Any]:
    """The family checkpoint's state dict and the ``config=`` (a ``config_cls``, or a JSON-like mapping turned into
    one — the CLI's ``--config FILE``); a typed error when no weights were given."""
    if options.weights is None:
        raise WeightsError(f"Model {options.name!r} needs weights (weights=, CLI --weights): {what}.")
    config = options.config
    if isinstance(config, Mapping):
        config = dataclass_from_mapping(config_cls, config, "config")
    return weights.read_state_dict(options.weights.path), config


def attach_autoencoder(options: Any, networks: dict[str, Any], files: list[Any], channels: int,
                       family: str) -> tuple[float, int]:
    """Load ``vae=`` (the user's, else the spec's) into ``networks``; → (latent scale, pixels per latent side).
    A 3-channel network is a pixel-space model unless the user passes an autoencoder."""
    ref = options.extra.get("vae") or (options.spec.extra.get("vae") if channels != 3 else None)
    if ref is None:
        if channels == 3:  # pixels: the spec's default autoencoder is for its latent models
            return SD_VAE_SCALE, 1
        raise WeightsError(f"This {family} works on {channels}-channel latents; pass vae= (CLI --vae): a diffusers "
                           f"AutoencoderKL checkpoint, e.g. sd-vae-ft-ema or shapes_ae.safetensors.")
    file = weights.resolve(ref)
    networks["vae"], scale = load_autoencoder_file(file.path, options.extra.get("vae_config"),
                                                   device=options.device, dtype=options.dtype)
    files.append(file)
    return scale, 2 ** (len(networks["vae"].config.block_out_channels) - 1)


def noise_schedule_from(options: Any, base: NoiseSchedule) -> NoiseSchedule:
    """``base`` with the ``noise_schedule=`` fields (the user's, else the spec's) applied, checked at load."""
    fields = options.extra.get("noise_schedule") or options.spec.extra.get("noise_schedule")
    try:
        schedule = replace(base, **fields) if fields else base
    except TypeError as exc:
        raise InvalidRequest(f"noise_schedule takes NoiseSchedule fields (beta_schedule, beta_start, ...): {exc}")
    schedule.betas()  # an unknown beta_schedule fails here, at load
    return schedule


def checkpoint_spec(options: Any, num_classes: int, null_label: int | None, image_size: int) -> Any:
    """The model spec as this checkpoint defines it: an unconditional one has no null class and no guidance."""
    conditional = num_classes > 0 and null_label is not None
    spec = options.spec
    return replace(spec, num_classes=num_classes if conditional else 0,
                   null_class=null_label if conditional else None, image_size=image_size,
                   class_names=spec.class_names if conditional else (),
                   default_guidance=spec.default_guidance if conditional else None,
                   default_guidance_scale=spec.default_guidance_scale if conditional else None,
                   default_guidance_options=spec.default_guidance_options if conditional else {})
