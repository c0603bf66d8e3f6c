"""LaMamba-Diff (a U-Net of Mamba + local-attention blocks, linear in tokens) as a built-in plugin.

No official weights exist; ``lamamba`` loads any official-layout state dict (the ``ema`` entry of a training
checkpoint, as safetensors) with its configuration inferred from the shapes, or a
:class:`genloom.plugins.lamamba.config.LaMambaConfig` passed as ``config=``. Sampling follows DiT: 250 respaced
DDPM steps with the learned variance, CFG on all four ε channels (w 1.5).

``lamamba-shapes`` is the embedded diffusion teacher, trained here (``genloom train lamamba``) on the 8×8×4 latents
of ``shapes-ae``: 25 DDIM steps, guided by CFG on the first half of the steps plus autoguidance by the same run's
earlier checkpoint (both assets).
"""

from __future__ import annotations

from typing import Any

from ...data.constants import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES
from ...diffusion_settings import SHAPES_NOISE
from ...engine.hookspecs import hookimpl
from ...engine.options import Option
from ...engine.specs import CommandSpec, ModelSpec, Paradigm

GENLOOM_PLUGIN_API = "1.0"
SD_VAE_MSE = "hf://stabilityai/sd-vae-ft-mse/diffusion_pytorch_model.safetensors"
OFFICIAL_W = 1.5
SHAPES_WEIGHTS, SHAPES_VAE = "asset:lamamba_shapes.safetensors", "asset:shapes_ae.safetensors"
#: the embedded model's guide for autoguidance: the same run's EMA weights at 5 000 steps (float16)
SHAPES_GUIDE = "asset:lamamba_shapes_guide.safetensors"
#: its default guidance, chosen on seeds disjoint from the benchmark's (BENCHMARKS.md): CFG w 3 on the first half
#: of the steps, where the outline is decided, plus autoguidance w 4 by the earlier checkpoint throughout
SHAPES_GUIDANCE, SHAPES_W = "cfg+autoguidance", 3.0
SHAPES_GUIDANCE_OPTIONS = {"stop": 0.5, "autoguidance.scale": 4.0, "autoguidance.guide_weights": SHAPES_GUIDE}
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
    register(ModelSpec(
        name="lamamba-shapes", factory=_build, paradigm=Paradigm.DIFFUSION,
        description="a latent LaMamba-Diff trained in this repo on the embedded shapes dataset (32 px through the "
                    "8×8×4 shapes-ae latents; the default teacher of `genloom distill`; embedded)",
        num_classes=NUM_CLASSES, null_class=NUM_CLASSES, image_size=IMAGE_SIZE, class_names=CLASS_NAMES,
        default_weights=SHAPES_WEIGHTS, default_sampler="ddim", default_steps=25, default_guidance=SHAPES_GUIDANCE,
        default_guidance_scale=SHAPES_W, default_guidance_options=SHAPES_GUIDANCE_OPTIONS,
        load_options=LOAD_OPTIONS, extra={"vae": SHAPES_VAE, "noise_schedule": SHAPES_NOISE}))


@hookimpl
def register_commands(register) -> None:  # type: ignore[no-untyped-def]
    from .cli import train_lamamba

    register(CommandSpec(name="lamamba", command=train_lamamba, group="train",
                         description="train the embedded lamamba-shapes"))
