"""A tiny random pixel-space LaMamba (8×8×3, 10 classes + null) registered as a diffusion teacher, and real
8-px images, for the f-distill tests (spec §4.12's tiny recipe): real networks and loaders, random weights."""

import types

import numpy as np
import torch
import torch.nn.functional as F

from genloom import ModelSpec, Paradigm, hookimpl
from genloom.data.constants import CLASS_NAMES
from genloom.data.shapes import render
from genloom.diffusion_settings import SHAPES_NOISE
from genloom.engine.weights import save_state_dict
from genloom.plugins.lamamba.config import LaMambaConfig
from genloom.plugins.lamamba.network import LaMambaNetwork

TINY = LaMambaConfig(dims=(16, 32), depths=(1, 1), bottleneck_depth=1, num_heads=2, window_size=4, latent_size=8,
                     in_channels=3, ssm_ratio=1.0, learn_sigma=False, num_classes=10)


def save_teacher(folder, seed: int = 0, config: LaMambaConfig = TINY):
    """Random weights with the adaLN-Zero gates opened (the official init zeroes them: the network would be 0)."""
    torch.manual_seed(seed)
    net = LaMambaNetwork(config)
    net.initialize_weights()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "adaLN_modulation" in name or "final_linear" in name:
                p.normal_(0, 0.05)
    return save_state_dict(net.state_dict(), folder / f"tiny_teacher_{seed}.safetensors")


def save_real_npz(folder, count: int = 64):
    """Shapes images box-filtered to 8 px, with labels, as an ADM .npz."""
    images, labels = render("train", 0, count)
    small = F.avg_pool2d(images.float(), 4).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    path = folder / "real8.npz"
    np.savez(path, small, labels.numpy())
    return path


def teacher_plugin(weights, guidance_scale: float | None = 2.0, **spec: object) -> types.ModuleType:
    """``tiny-teacher`` with ``weights`` as its default (a checkpoint without a null row is class-free); ``spec``
    overrides fields of its ``ModelSpec`` (e.g. a default guidance stack)."""

    @hookimpl
    def register_models(register):
        from genloom.plugins.lamamba import _build

        register(ModelSpec(name="tiny-teacher", factory=_build, paradigm=Paradigm.DIFFUSION, num_classes=10,
                           null_class=10, image_size=8, class_names=CLASS_NAMES,
                           default_weights=str(weights), default_sampler="ddim", default_steps=4,
                           **{"default_guidance": "cfg" if guidance_scale else None,
                              "default_guidance_scale": guidance_scale, "description": "tiny random LaMamba for tests",
                              "extra": {"vae": None, "noise_schedule": SHAPES_NOISE}, **spec}))

    module = types.ModuleType("genloom_tiny_teacher")
    module.register_models = register_models
    return module
