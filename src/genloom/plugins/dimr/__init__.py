"""DiMR (multi-resolution diffusion with time-dependent norms) as a built-in plugin.

``dimr-xl-2r`` / ``dimr-g-2r`` are the released ImageNet-256 models (weights from the hub repo QHL067/DiMR,
decoded with sd-vae-ft-ema); ``dimr`` loads any configuration from a checkpoint's shapes, or from a
:class:`genloom.plugins.dimr.config.DiMRConfig` passed as ``config=``; ``dimr-shapes`` is the embedded default.
"""

from __future__ import annotations

from typing import Any

from ...data.constants import CLASS_NAMES, IMAGE_SIZE
from ...engine.hookspecs import hookimpl
from ...engine.specs import CommandSpec, ModelSpec, Paradigm

GENLOOM_PLUGIN_API = "1.0"
HUB = "hf://QHL067/DiMR"
SD_VAE = "hf://stabilityai/sd-vae-ft-ema/diffusion_pytorch_model.safetensors"
RELEASED = {"dimr-xl-2r": ("DiMR-XL_2R_800epochs.pth", "505M"), "dimr-g-2r": ("DiMR-G_2R_800epochs.pth", "1.06B")}
OFFICIAL_W = 1.4  # the released config: eps_c + 0.4·(eps_c − eps_u)
# dimr-shapes works on 32 px pixels, so it is trained with the cosine schedule (the released models: SD's scaled
# linear betas on latents)
SHAPES_NOISE = {"beta_schedule": "squaredcos_cap_v2"}


def _build(options: Any) -> Any:
    from .loader import build

    return build(options)


@hookimpl
def register_models(register) -> None:  # type: ignore[no-untyped-def]
    for name, (file, params) in RELEASED.items():
        register(ModelSpec(
            name=name, factory=_build, paradigm=Paradigm.DIFFUSION,
            description=f"DiMR {name[5:].upper()} ({params} params), ImageNet 256 (official weights: {HUB}/{file})",
            num_classes=1000, null_class=1000, image_size=256, default_weights=f"{HUB}/{file}",
            default_sampler="dpm-solver-fast", default_steps=250, default_guidance="cfg",
            default_guidance_scale=OFFICIAL_W, extra={"vae": SD_VAE, "official": name}))
    register(ModelSpec(
        name="dimr", factory=_build, paradigm=Paradigm.DIFFUSION,
        description="any DiMR checkpoint: weights=, optional config=DiMRConfig, num_heads=, vae= (latent models)",
        num_classes=1000, null_class=1000, image_size=256, default_sampler="dpm-solver-fast", default_steps=50,
        default_guidance="cfg", default_guidance_scale=OFFICIAL_W))
    register(ModelSpec(
        name="dimr-shapes", factory=_build, paradigm=Paradigm.DIFFUSION,
        description="embedded default: a small pixel-space DiMR trained in this repository on the shapes dataset",
        num_classes=len(CLASS_NAMES), null_class=len(CLASS_NAMES), image_size=IMAGE_SIZE,
        class_names=CLASS_NAMES, default_weights="asset:dimr_shapes.safetensors", default_sampler="dpm++2m",
        default_steps=25, default_guidance="cfg", default_guidance_scale=3.0,
        extra={"noise_schedule": SHAPES_NOISE, "num_heads": 4}))


@hookimpl
def register_commands(register) -> None:  # type: ignore[no-untyped-def]
    from .cli import train_dimr

    register(CommandSpec(name="dimr", command=train_dimr, group="train",
                         description="train the embedded dimr-shapes default"))
