"""The plugin host: isolation of failing plugins, API versions, duplicates, allow-list, strict mode."""

import types
import warnings

import pytest

import genloom
from genloom import Engine, ModelSpec, Paradigm, PluginError, SamplerSpec, hookimpl
from genloom.engine.plugins import PluginSettings, PluginWarning


def _module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(mod, key, value)
    return mod


def _model_hook(*names, paradigm=Paradigm.ONE_STEP):
    @hookimpl
    def register_models(register):
        for n in names:
            register(ModelSpec(name=n, factory=lambda o: None, paradigm=paradigm, description="test",
                               num_classes=2, image_size=8))
    return register_models


def _registering(spec):
    @hookimpl
    def register_models(register):
        register(spec)
    return register_models


def _quiet_engine(**kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine = Engine(third_party=False, strict=False, **kw)
    return engine, caught


def _record(engine, name):
    return next(r for r in engine.plugin_report if r.name == name)


def test_builtins_register_through_the_same_path():
    engine = Engine(third_party=False)
    names = {r.name: r for r in engine.plugin_report}
    assert names["smoke"].status == "loaded" and names["smoke"].source == "builtin"
    assert names["smoke"].contributions == {"models": ["smoke"]}
    assert "register_models" in names["smoke"].hooks
    assert "one-step" in engine.samplers and "smoke" in engine.models
    assert engine.models["smoke"].plugin == "smoke"


def test_plugin_objects_register_models_and_kwargs_form():
    @hookimpl
    def register_samplers(register):
        register(name="my-loop", factory=lambda **o: None, paradigm="one-step", description="kw form")

    good = _module("good", GENLOOM_PLUGIN_API="1.2", register_models=_model_hook("m1", "m2"),
                   register_samplers=register_samplers)
    engine = Engine(third_party=False, strict=True, plugins=[("good", good)])
    assert {"m1", "m2"} <= set(engine.models)
    assert engine.samplers["my-loop"].paradigm is Paradigm.ONE_STEP  # the string became the enum
    assert engine.models["m1"].plugin == "good"
    assert _record(engine, "good").api == "1.2"


def test_hook_that_raises_is_isolated_and_rolled_back():
    @hookimpl
    def register_samplers(register):
        raise ValueError("boom in sampler hook")

    bad = _module("bad", register_models=_model_hook("bad-model"), register_samplers=register_samplers)
    good = _module("good", register_models=_model_hook("good-model"))
    engine, caught = _quiet_engine(plugins=[("bad", bad), ("good", good)])
    rec = _record(engine, "bad")
    assert rec.status == "failed" and "register_samplers raised: ValueError: boom in sampler hook" in rec.error
    assert "bad-model" not in engine.models  # its successful hook was rolled back too
    assert "good-model" in engine.models
    assert any(issubclass(w.category, PluginWarning) and "bad" in str(w.message) for w in caught)
    assert bad not in engine.plugin_manager.get_plugins()


def test_duplicate_name_fails_the_second_plugin_whole():
    first = _module("first", register_models=_model_hook("shared-name"))
    second = _module("second", register_models=_model_hook("other", "shared-name"))
    engine, _ = _quiet_engine(plugins=[("first", first), ("second", second)])
    assert engine.models["shared-name"].plugin == "first"
    rec = _record(engine, "second")
    assert rec.status == "failed" and "already registered by plugin 'first'" in rec.error
    assert "other" not in engine.models


def test_duplicate_of_a_builtin_name_is_refused():
    clash = _module("clash", register_models=_model_hook("smoke"))
    engine, _ = _quiet_engine(plugins=[("clash", clash)])
    assert engine.models["smoke"].plugin == "smoke"
    assert _record(engine, "clash").status == "failed"


def test_other_api_major_is_refused_with_the_needed_version():
    future = _module("future", GENLOOM_PLUGIN_API="2.1", register_models=_model_hook("future-model"))
    engine, _ = _quiet_engine(plugins=[("future", future)])
    rec = _record(engine, "future")
    assert rec.status == "refused"
    assert "API 2.1" in rec.error and f"API {genloom.PLUGIN_API_VERSION}" in rec.error
    assert "future-model" not in engine.models


def test_malformed_api_version_unknown_hook_and_wrong_spec_type():
    garbled = _module("garbled", GENLOOM_PLUGIN_API="one", register_models=_model_hook("g"))

    @hookimpl
    def register_widgets(register):
        pass

    unknown = _module("unknown", register_widgets=register_widgets)

    wrong = _module("wrong", register_models=_registering(
        SamplerSpec(name="x", factory=lambda: None, paradigm=Paradigm.ONE_STEP)))
    bad_paradigm = _module("badparadigm", register_models=_registering(
        ModelSpec(name="y", factory=lambda o: None, paradigm="teleport", image_size=8)))
    engine, _ = _quiet_engine(plugins=[("garbled", garbled), ("unknown", unknown), ("wrong", wrong),
                                       ("badparadigm", bad_paradigm)])
    assert _record(engine, "garbled").status == "refused"
    assert "unknown hook" in _record(engine, "unknown").error
    assert "expects a ModelSpec, got SamplerSpec" in _record(engine, "wrong").error
    assert "unknown paradigm 'teleport'" in _record(engine, "badparadigm").error
    assert "smoke" in engine.models


def test_strict_mode_raises():
    @hookimpl
    def register_models(register):
        raise RuntimeError("nope")

    with pytest.raises(PluginError, match="GENLOOM_PLUGINS=strict"):
        Engine(third_party=False, strict=True, plugins=[("bad", _module("bad", register_models=register_models))])


def test_settings_from_environment():
    assert PluginSettings.from_env({}) == PluginSettings(third_party=True, strict=False, allow=None)
    s = PluginSettings.from_env({"GENLOOM_PLUGINS": "strict, off", "GENLOOM_PLUGINS_ALLOW": "a,b"})
    assert s == PluginSettings(third_party=False, strict=True, allow=frozenset({"a", "b"}))
    with pytest.raises(PluginError, match="unknown flag"):
        PluginSettings.from_env({"GENLOOM_PLUGINS": "stirct"})


def test_registries_are_read_only_mappings_with_suggestions():
    engine = Engine(third_party=False)
    with pytest.raises(TypeError):
        engine.models["x"] = None  # type: ignore[index]
    with pytest.raises(genloom.ModelNotFound, match="Did you mean 'smoke'"):
        engine.models["smokey"]
    with pytest.raises(genloom.NotRegistered, match="Unknown sampler"):
        engine.samplers["ddim-ish"]
