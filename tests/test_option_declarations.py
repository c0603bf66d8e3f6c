"""Options are declared once (``Option`` in a policy's or sampler's spec); the CLI help, the UI form fields and the
API validation all derive from that declaration. A policy registered here with a new option shows up in all three."""

import types

import pytest

from genloom import Engine, GuidanceSpec, InvalidRequest, hookimpl
from genloom.engine.options import Option, options_help
from genloom.ui.service import GenerationService

from .conftest import run_cli

EXTRA = Option("sharpness", "float", 0.5, "a brand-new knob", minimum=0.0, maximum=1.0)


def _plugin():
    @hookimpl
    def register_guidance(register):
        def factory(scale=None, sharpness=0.5):
            from genloom.plugins.guidance.cfg import CFG

            return CFG.create(scale=scale)

        register(GuidanceSpec(name="sharp-cfg", factory=factory, requires=frozenset({"null_class"}),
                              options=(EXTRA,), description="CFG with an extra declared option"))

    module = types.ModuleType("sharp")
    module.register_guidance = register_guidance
    return module


@pytest.fixture(scope="module")
def engine():
    return Engine(third_party=False, strict=True, plugins=[("sharp", _plugin())])


def _components(engine):
    yield from (("policy", spec) for spec in engine.guidance.values())
    yield from (("sampler", spec) for spec in engine.samplers.values())


def test_cli_help_lists_every_declared_option():
    done_p, done_s = run_cli("policies"), run_cli("samplers")
    engine = Engine(third_party=False)
    for kind, spec in _components(engine):
        text = (done_p if kind == "policy" else done_s).stdout
        for option in spec.options:
            assert option.describe() in text, (spec.name, option.name)


def test_ui_fields_and_api_validation_follow_each_declaration(engine):
    svc = GenerationService(engine=engine)
    pipe = engine.load("var-shapes")
    for kind, spec in _components(engine):
        fields = svc.option_fields(spec.name if kind == "policy" else None, spec.name if kind == "sampler" else None)
        assert [f["name"] for f in fields] == [o.name for o in spec.options]
        assert all(f["info"] == o.help for f, o in zip(fields, spec.options))
    # the API: a declared option of the next-scale sampler / of CFG is checked by its declaration
    for kind, spec in _components(engine):
        if spec.name not in ("next-scale", "cfg", "sharp-cfg"):
            continue
        for option in spec.options:
            if option.kind in ("float", "int") and option.minimum is not None:
                with pytest.raises(InvalidRequest, match=f"option '{option.name}' of {kind} '{spec.name}'"):
                    pipe(labels=[0], seed=0, guidance=spec.name if kind == "policy" else None, guidance_scale=2.0,
                         **{option.name: option.minimum - 1})


def test_a_new_option_appears_in_cli_ui_and_api(engine):
    spec = engine.guidance["sharp-cfg"]
    assert EXTRA.describe() in options_help(spec.options)  # what `genloom policies` prints for it
    svc = GenerationService(engine=engine)
    assert svc.option_fields("sharp-cfg", None)[0]["name"] == "sharpness"
    assert "sharpness=0.5" in svc.options_placeholder("sharp-cfg", None)
    pipe = engine.load("var-shapes")
    res = pipe(labels=[0], seed=0, guidance="sharp-cfg", guidance_scale=2.0, sharpness="0.25")  # text is parsed
    assert res.manifest["request"]["sharpness"] == 0.25
    with pytest.raises(InvalidRequest, match=r"option 'sharpness' of policy 'sharp-cfg' must lie in \[0, 1\]"):
        pipe(labels=[0], seed=0, guidance="sharp-cfg", guidance_scale=2.0, sharpness=3)
    with pytest.raises(InvalidRequest, match="Unknown option 'sharpnes'.*Did you mean 'sharpness'"):
        pipe(labels=[0], seed=0, guidance="sharp-cfg", guidance_scale=2.0, sharpnes=0.1)
    with pytest.raises(InvalidRequest, match="request argument of its own"):
        svc.request("var-shapes", ["circle"], 1, 0, "sharp-cfg", 2.0, None, None, "num_images=500")
