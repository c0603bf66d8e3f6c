"""Our built-ins are held to the same conformance kit as third-party plugins."""

import pytest

from genloom import Engine
from genloom.testing import ConformanceError, check_guidance_policy, check_model, check_model_spec, check_sampler_spec


def test_smoke_model_conforms():
    check_model(Engine(third_party=False, strict=True), "smoke")


def test_builtin_samplers_conform():
    for spec in Engine(third_party=False).samplers.values():
        check_sampler_spec(spec)


def test_builtin_model_specs_conform():
    for spec in Engine(third_party=False).models.values():
        check_model_spec(spec)


def test_builtin_policies_conform():
    engine = Engine(third_party=False)
    check_guidance_policy(engine.guidance["cfg"])
    check_guidance_policy(engine.guidance["cfg"], schedule="power_cosine", power=2.0, rescale=0.5)
    check_guidance_policy(engine.guidance["adaptive"], threshold=0.5)


def test_policies_built_with_a_context_conform(tmp_path):
    """autoguidance, GFCG and LinearAG receive the loaded model's context (guide loader, classifier)."""
    import genloom
    from genloom.engine.guidance import GuidanceContext
    from genloom.plugins.guidance.linear_ag import calibrate

    from .tiny_dimr import TINY, save_tiny

    pipe = genloom.load("dimr", weights=save_tiny(tmp_path), config=TINY)
    context = GuidanceContext(pipe.model, pipe._sibling, pipe._classifier)
    engine = Engine(third_party=False)
    check_guidance_policy(engine.guidance["autoguidance"], guide_weights=save_tiny(tmp_path, seed=3), context=context)
    check_guidance_policy(engine.guidance["gfcg"], cfg_scale=2.0, context=context)
    table = calibrate(pipe, sampler="ddim", steps=5, scale=3.0, num=4, k_full=1, log=lambda _: None)
    check_guidance_policy(engine.guidance["linear-ag"], table=table.save(tmp_path / "t.safetensors"), context=context)


def test_the_kit_can_fail():
    spec = Engine(third_party=False).models["smoke"]
    import dataclasses

    with pytest.raises(ConformanceError, match="class names"):
        check_model_spec(dataclasses.replace(spec, class_names=("only-one",)))
    with pytest.raises(ConformanceError, match="image_size"):
        check_model_spec(dataclasses.replace(spec, image_size=0))
    cfg = Engine(third_party=False).guidance["cfg"]

    class Sloppy:  # reads the unconditional output of rows it never asked for
        name, space = "sloppy", "affine"

        def init_state(self, b):
            return None

        def request(self, info, state):
            import torch

            from genloom.engine.guidance import BranchRequest

            return [BranchRequest("uncond", rows=torch.arange(info.batch_size) == 0, null=True)]

        def combine(self, info, outputs, state):
            return 2 * outputs["cond"] - outputs["uncond"]

    with pytest.raises(ConformanceError, match="NaN"):
        check_guidance_policy(dataclasses.replace(cfg, factory=lambda **kw: Sloppy()))
