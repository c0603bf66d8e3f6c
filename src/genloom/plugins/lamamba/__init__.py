"""LaMamba-Diff (a U-Net of Mamba + local-attention blocks, linear in tokens) as a built-in plugin.

No official weights exist; ``lamamba`` loads any official-layout state dict (the ``ema`` entry of a training
checkpoint, as safetensors) with its configuration inferred from the shapes, or a
:class:`genloom.plugins.lamamba.config.LaMambaConfig` passed as ``config=``. Sampling follows DiT: 250 respaced
DDPM steps with the learned variance, CFG on all four ε channels (w 1.5).
"""

from __future__ import annotations

from typing import Any

from ...diffusion_settings import SHAPES_NOISE  # noqa: F401 - re-exported (the shapes recipe)
from ...engine.hookspecs import hookimpl
from ...engine.options import Option
from ...engine.specs import CommandSpec, ModelSpec, Paradigm

GENLOOM_PLUGIN_API = "1.0"
SD_VAE_MSE = "hf://stabilityai/sd-vae-ft-mse/diffusion_pytorch_model.safetensors"
OFFICIAL_W = 1.5
LOAD_OPTIONS = (
    Option("vae", "path", None, "the AutoencoderKL of the latents (path, hf://… or asset:…; official: "
           "sd-vae-ft-mse)"),
    Option("vae_config", "dict", None, "AutoencoderKL config overrides (default: the file's own, else SD KL-f8)"),
    Option("noise_schedule", "dict", None, "NoiseSchedule fields the model was trained with (default DiT's: "
           "linear betas, eps, learned variance)"),
)


def _build(options: Any) -> Any:
    from .loader import build

    return build(options)


@hookimpl
def register_models(register) -> None:  # type: ignore[no-untyped-def]
    register(ModelSpec(
        name="lamamba", factory=_build, paradigm=Paradigm.DIFFUSION,
        description="any LaMamba-Diff state dict: weights=, optional config=LaMambaConfig, vae= (default "
                    "sd-vae-ft-mse), noise_schedule=",
        num_classes=1000, null_class=1000, image_size=256, default_sampler="ddpm", default_steps=250,
        default_guidance="cfg", default_guidance_scale=OFFICIAL_W, load_options=LOAD_OPTIONS,
        extra={"vae": SD_VAE_MSE}))


@hookimpl
def register_commands(register) -> None:  # type: ignore[no-untyped-def]
    from .cli import train_lamamba

    register(CommandSpec(name="lamamba", command=train_lamamba, group="train",
                         description="train the embedded lamamba-shapes"))
