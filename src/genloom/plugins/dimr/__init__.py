"""DiMR (multi-resolution diffusion with time-dependent norms) as a built-in plugin.

``dimr-xl-2r`` / ``dimr-g-2r`` are the released ImageNet-256 models (weights from the hub repo QHL067/DiMR,
decoded with sd-vae-ft-ema); ``dimr`` loads any configuration from a checkpoint's shapes, or from a
:class:`genloom.plugins.dimr.config.DiMRConfig` passed as ``config=``. The embedded ``dimr-shapes`` is not
registered yet: `genloom train dimr` exists, but no CPU run has reached the quality bar (see BENCHMARKS.md);
its weights load with ``genloom.load("dimr", weights=..., num_heads=4, noise_schedule=SHAPES_NOISE)``.
"""

from __future__ import annotations

from typing import Any

from ...diffusion_settings import SHAPES_NOISE  # noqa: F401 - re-exported (the shapes recipe)
from ...engine.hookspecs import hookimpl
from ...engine.options import Option
from ...engine.specs import CommandSpec, ModelSpec, Paradigm

GENLOOM_PLUGIN_API = "1.0"
HUB = "hf://QHL067/DiMR"
SD_VAE = "hf://stabilityai/sd-vae-ft-ema/diffusion_pytorch_model.safetensors"
RELEASED = {"dimr-xl-2r": ("DiMR-XL_2R_800epochs.pth", "505M"), "dimr-g-2r": ("DiMR-G_2R_800epochs.pth", "1.06B")}
OFFICIAL_W = 1.4  # the released config: eps_c + 0.4·(eps_c − eps_u)
LOAD_OPTIONS = (
    Option("vae", "path", None, "the AutoencoderKL of a latent model (path, hf://… or asset:…)"),
    Option("vae_config", "dict", None, "AutoencoderKL config overrides (default: the file's own, else SD KL-f8)"),
    Option("num_heads", "int", None, "attention heads of the Transformer stages (not in the checkpoint's shapes; "
           "default 16)", minimum=1),
    Option("noise_schedule", "dict", None, "NoiseSchedule fields the model was trained with (beta_schedule, "
           "prediction_type, ...)"),
)


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
            default_guidance_scale=OFFICIAL_W, load_options=LOAD_OPTIONS, extra={"vae": SD_VAE, "official": name}))
    register(ModelSpec(
        name="dimr", factory=_build, paradigm=Paradigm.DIFFUSION,
        description="any DiMR checkpoint: weights=, optional config=DiMRConfig, num_heads=, vae= (latent models), "
                    "noise_schedule= (dict of NoiseSchedule fields)",
        num_classes=1000, null_class=1000, image_size=256, default_sampler="dpm-solver-fast", default_steps=50,
        default_guidance="cfg", default_guidance_scale=OFFICIAL_W, load_options=LOAD_OPTIONS))


@hookimpl
def register_commands(register) -> None:  # type: ignore[no-untyped-def]
    from .cli import train_dimr

    register(CommandSpec(name="dimr", command=train_dimr, group="train",
                         description="train the embedded dimr-shapes default"))
