"""VAR (next-scale prediction over a multi-scale VQVAE) as a built-in plugin.

``var-d16`` … ``var-d36`` are the official ImageNet models (weights from the hub repo FoundationVision/var, or a
local path with ``weights=`` and ``vae=``); ``var`` loads any configuration from a checkpoint's shapes, or from a
:class:`genloom.plugins.var.config.VARConfig` passed as ``config=``.
"""

from __future__ import annotations

from typing import Any

from ...data.constants import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES
from ...engine.hookspecs import hookimpl
from ...engine.options import Option
from ...engine.specs import CommandSpec, ModelSpec, Paradigm

GENLOOM_PLUGIN_API = "1.0"
HUB = "hf://FoundationVision/var"
OFFICIAL_VAE = f"{HUB}/vae_ch160v4096z32.pth"
OFFICIAL = {16: 256, 20: 256, 24: 256, 30: 256, 36: 512}
DEFAULT_W = 2.5  # the official FID setting cfg=1.5 (original formulation), as an Imagen w, on the linear ramp
# the embedded default, trained in this repo (`genloom train var`); its CFG strength and schedule were chosen by
# classifier accuracy over a sweep of settings on seeds 0–499 and confirmed on 1 000–1 499 (BENCHMARKS.md): on this
# model a constant strength at every scale beats the official ramp (0.72 against 0.69)
SHAPES_WEIGHTS, SHAPES_VAE = "asset:var_shapes.safetensors", "asset:var_shapes_vae.safetensors"
SHAPES_W = 5.0
SHAPES_GUIDANCE_OPTIONS = {"schedule": "constant"}
OFFICIAL_SCALES = 10  # both official schedules (256 and 512 px) have ten scales
SHAPES_SCALES = 6  # 1-2-3-4-6-8
LOAD_OPTIONS = (Option("vae", "path", None, "the multi-scale VQVAE checkpoint (path, hf://… or asset:…)"),)


def _build(options: Any) -> Any:
    from .loader import build

    return build(options)


@hookimpl
def register_models(register) -> None:  # type: ignore[no-untyped-def]
    for depth, size in OFFICIAL.items():
        register(ModelSpec(
            name=f"var-d{depth}", factory=_build, paradigm=Paradigm.NEXT_SCALE,
            description=f"VAR depth {depth}, ImageNet {size}px (official weights: {HUB}/var_d{depth}.pth)",
            num_classes=1000, null_class=1000, image_size=size, default_weights=f"{HUB}/var_d{depth}.pth",
            default_sampler="next-scale", default_guidance="cfg", default_guidance_scale=DEFAULT_W,
            default_steps=OFFICIAL_SCALES, load_options=LOAD_OPTIONS, extra={"vae": OFFICIAL_VAE}))
    register(ModelSpec(
        name="var-shapes", factory=_build, paradigm=Paradigm.NEXT_SCALE,
        description="VAR trained in this repo on the embedded shapes dataset (32 px, scales 1-2-3-4-6-8, embedded)",
        num_classes=NUM_CLASSES, null_class=NUM_CLASSES, image_size=IMAGE_SIZE, class_names=CLASS_NAMES,
        default_weights=SHAPES_WEIGHTS, default_sampler="next-scale", default_guidance="cfg",
        default_guidance_scale=SHAPES_W, default_guidance_options=SHAPES_GUIDANCE_OPTIONS,
        default_steps=SHAPES_SCALES, load_options=LOAD_OPTIONS, extra={"vae": SHAPES_VAE}))
    register(ModelSpec(
        name="var", factory=_build, paradigm=Paradigm.NEXT_SCALE,
        description="any VAR checkpoint: weights=VAR file, vae=VQVAE file, optional config=VARConfig",
        num_classes=1000, null_class=1000, image_size=256, default_sampler="next-scale", default_guidance="cfg",
        default_guidance_scale=DEFAULT_W, load_options=LOAD_OPTIONS))


@hookimpl
def register_commands(register) -> None:  # type: ignore[no-untyped-def]
    from .cli import train_var

    register(CommandSpec(name="var", command=train_var, group="train",
                         description="train the embedded var-shapes default"))
