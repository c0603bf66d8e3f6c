"""Declares a plugin API major this genloom does not speak."""

from genloom import ModelSpec, Paradigm, hookimpl

GENLOOM_PLUGIN_API = "2.0"


@hookimpl
def register_models(register):
    register(ModelSpec(name="future-model", factory=lambda o: None, paradigm=Paradigm.ONE_STEP,
                       description="never registered", num_classes=1, image_size=8))
