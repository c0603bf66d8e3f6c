"""A tiny random pixel-space DiMR (16 px, 10 classes + null) shared by the sampler and UI tests: real network,
real loader, real samplers; only the weights are random. The UI tests also get the golden tiny VAR."""

import types
from pathlib import Path

import torch

from genloom import ModelSpec, Paradigm, hookimpl
from genloom.data.constants import CLASS_NAMES
from genloom.engine.weights import save_state_dict
from genloom.plugins.dimr.config import DiMRConfig, StageConfig
from genloom.plugins.dimr.network import DiMRNetwork

TINY = DiMRConfig(channels=3, num_classes=11, stages=(
    StageConfig("transformer", 32, 64, 3, 8, 8, num_heads=2, input_feature_ratio=2),
    StageConfig("convnext", 16, 32, 3, 16, 16),
))


def randomised(config: DiMRConfig, seed: int) -> dict:
    """Random weights with time-dependent parameters that really depend on time (the official init does not)."""
    torch.manual_seed(seed)
    net = DiMRNetwork(config)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "param0" in name or "param1" in name or "nodecay" in name:
                p.add_(0.3 * torch.randn_like(p))
    return net.state_dict()


def save_tiny(folder, config: DiMRConfig = TINY, seed: int = 0):
    return save_state_dict(randomised(config, seed), folder / f"tiny_{seed}.safetensors")


GOLDEN_VAR = Path(__file__).parent / "data" / "golden" / "var"


def tiny_plugin(weights) -> types.ModuleType:
    """A plugin registering ``tiny-dimr`` with these weights as its default (like an embedded model), and
    ``tiny-var``: the golden-vector VAR (64 px, 1000 classes), a next-scale model the Edit tab can use."""

    @hookimpl
    def register_models(register):
        from genloom.plugins.dimr import _build
        from genloom.plugins.var import _build as _var_build

        register(ModelSpec(name="tiny-dimr", factory=_build, paradigm=Paradigm.DIFFUSION, num_classes=10,
                           null_class=10, image_size=16, class_names=CLASS_NAMES, default_weights=str(weights),
                           default_sampler="ddim", default_steps=6, default_guidance="cfg",
                           default_guidance_scale=3.0, description="tiny random DiMR for tests",
                           extra={"num_heads": 2}))
        register(ModelSpec(name="tiny-var", factory=_var_build, paradigm=Paradigm.NEXT_SCALE, num_classes=1000,
                           null_class=1000, image_size=64, default_weights=str(GOLDEN_VAR / "var_tiny.safetensors"),
                           default_sampler="next-scale", default_guidance="cfg", default_guidance_scale=2.0,
                           description="the golden tiny VAR for tests",
                           extra={"vae": str(GOLDEN_VAR / "vae.safetensors")}))

    module = types.ModuleType("genloom_tiny_dimr")
    module.register_models = register_models
    return module
