"""Request validation against guidance and sampler registrations (specs only: nothing is built)."""

import types

import pytest

from genloom import Engine, GuidanceSpec, InvalidRequest, ModelSpec, Paradigm, SamplerSpec, hookimpl
from genloom.engine.options import Option
from genloom.engine.request import build_request


def _plugin():
    @hookimpl
    def register_models(register):
        register(ModelSpec(name="diff-null", factory=lambda o: None, paradigm=Paradigm.DIFFUSION, num_classes=4,
                           null_class=4, image_size=8, description="d", default_guidance="ramp",
                           default_sampler="euler-ish"))
        register(ModelSpec(name="diff-windowed", factory=lambda o: None, paradigm=Paradigm.DIFFUSION,
                           num_classes=4, null_class=4, image_size=8, description="d", default_guidance="ramp",
                           default_guidance_scale=3.0, default_guidance_options={"power": 2.5},
                           default_sampler="euler-ish"))
        register(ModelSpec(name="diff-plain", factory=lambda o: None, paradigm=Paradigm.DIFFUSION, num_classes=4,
                           image_size=8, description="d"))

    @hookimpl
    def register_samplers(register):
        register(SamplerSpec(name="euler-ish", factory=lambda **o: None, paradigm=Paradigm.DIFFUSION,
                             default_steps=20, options=(Option("eta", "float", 0.0, "noise", minimum=0.0),)))

    @hookimpl
    def register_guidance(register):
        register(GuidanceSpec(name="ramp", factory=lambda **o: None, requires=frozenset({"null_class"}),
                              options=(Option("power", "float", 1.0, "exponent", minimum=0.0),)))
        register(GuidanceSpec(name="scale-only-var", factory=lambda **o: None,
                              paradigms=frozenset({Paradigm.NEXT_SCALE})))

    mod = types.ModuleType("reqplug")
    mod.register_models, mod.register_samplers, mod.register_guidance = (
        register_models, register_samplers, register_guidance)
    return mod


@pytest.fixture(scope="module")
def engine():
    return Engine(third_party=False, strict=True, plugins=[("reqplug", _plugin())])


def _req(engine, model, **kw):
    return build_request(engine.models[model], engine.samplers, engine.guidance, **kw)


def test_defaults_and_option_routing(engine):
    req = _req(engine, "diff-null", labels=[1], guidance_scale=2.0, options={"power": 2.0, "eta": 0.5})
    assert req.guidance.name == "ramp" and req.guidance_scale == 2.0
    assert req.guidance_options == {"power": 2.0} and req.sampler_options == {"eta": 0.5}
    assert req.sampler.name == "euler-ish" and req.steps == 20
    fallback = _req(engine, "diff-plain", labels=[1])  # no default sampler: a registered one of its paradigm
    assert fallback.sampler.paradigm is Paradigm.DIFFUSION
    assert req.as_kwargs()["power"] == 2.0
    assert _req(engine, "diff-null", labels=[1], guidance="none").guidance is None


def test_default_guidance_options_go_with_the_default_policy(engine):
    """Like its scale, a model's default policy brings its default options — unless the request names any."""
    plain = _req(engine, "diff-windowed", labels=[1])
    assert (plain.guidance.name, plain.guidance_scale, plain.guidance_options) == ("ramp", 3.0, {"power": 2.5})
    assert _req(engine, "diff-windowed", labels=[1], guidance_scale=5.0).guidance_options == {"power": 2.5}
    assert _req(engine, "diff-windowed", labels=[1], options={"power": 1.0}).guidance_options == {"power": 1.0}
    assert _req(engine, "diff-windowed", labels=[1], guidance="none").guidance is None
    assert _req(engine, "diff-null", labels=[1]).guidance_options == {}


def test_policy_errors(engine):
    with pytest.raises(InvalidRequest, match="needs an unconditional"):
        _req(engine, "diff-plain", labels=[1], guidance="ramp", guidance_scale=2.0)
    with pytest.raises(InvalidRequest, match="does not support diffusion"):
        _req(engine, "diff-null", labels=[1], guidance="scale-only-var")
    with pytest.raises(InvalidRequest, match="Did you mean 'ramp'"):
        _req(engine, "diff-null", labels=[1], guidance="rampp")
    with pytest.raises(InvalidRequest, match="guidance_scale was given with guidance='none'"):
        _req(engine, "diff-plain", labels=[1], guidance_scale=2.0)


def test_sampler_of_another_paradigm(engine):
    with pytest.raises(InvalidRequest, match="is for one-step models"):
        _req(engine, "diff-null", labels=[1], sampler="one-step")
    assert _req(engine, "diff-null", labels=[1], steps=7).steps == 7
