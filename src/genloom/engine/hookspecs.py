"""The plugin contract: hook specifications every genloom plugin implements a subset of.

Each hook receives a ``register`` callback so that one plugin can contribute any number of things::

    from genloom import hookimpl, ModelSpec

    GENLOOM_PLUGIN_API = "1.0"

    @hookimpl
    def register_models(register):
        register(ModelSpec(name="my-model", factory=build, paradigm="one-step"))

``register`` takes either a spec object or the spec's fields as keyword arguments.
A plugin module declares the contract version it was written for in ``GENLOOM_PLUGIN_API``; a different
major version is refused with a message saying which one genloom speaks.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "genloom"
PLUGIN_API_VERSION = "1.0"
PLUGIN_API_MAJOR = int(PLUGIN_API_VERSION.split(".")[0])

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_models(register) -> None:  # type: ignore[no-untyped-def]
    """Contribute model families: ``register(ModelSpec(...))``."""


@hookspec
def register_guidance(register) -> None:  # type: ignore[no-untyped-def]
    """Contribute guidance policies: ``register(GuidanceSpec(...))``."""


@hookspec
def register_samplers(register) -> None:  # type: ignore[no-untyped-def]
    """Contribute sampling loops: ``register(SamplerSpec(...))``."""


@hookspec
def register_classifiers(register) -> None:  # type: ignore[no-untyped-def]
    """Contribute image classifiers: ``register(ClassifierSpec(...))``."""


@hookspec
def register_kernels(register) -> None:  # type: ignore[no-untyped-def]
    """Contribute compute kernels: ``register(KernelSpec(...))``."""


@hookspec
def register_commands(register) -> None:  # type: ignore[no-untyped-def]
    """Contribute CLI commands: ``register(click_command)`` or ``register(CommandSpec(...))``."""


#: hook name → registry kind it fills
HOOK_KINDS = {
    "register_models": "models",
    "register_guidance": "guidance",
    "register_samplers": "samplers",
    "register_classifiers": "classifiers",
    "register_kernels": "kernels",
    "register_commands": "commands",
}
