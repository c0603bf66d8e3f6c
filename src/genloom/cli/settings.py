"""Click options generated from a trainer's settings dataclass: each setting is declared once (name, type,
default, help in ``field(metadata={"help": ...})``) and the command line follows from it. Torch-free."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any

import click

F = typing.TypeVar("F", bound=Callable[..., Any])


def _click_type(annotation: Any) -> tuple[Any, bool]:
    """(click type, optional?) of a dataclass field annotation (``int``, ``float | None``, ``str | None``…)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _click_type(args[0])[0], True
    if origin is tuple:
        return typing.get_args(annotation)[0], False
    return annotation, False


def settings_options(settings_cls: type, exclude: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Decorate a click command with one ``--kebab-name`` option per field of ``settings_cls``."""
    hints = typing.get_type_hints(settings_cls)

    def decorate(fn: F) -> F:
        for f in reversed(dataclasses.fields(settings_cls)):
            if f.name in exclude:
                continue
            kind, optional = _click_type(hints[f.name])
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            flag = "--" + f.name.replace("_", "-")
            help_text = f.metadata.get("help", "")
            if kind is bool:
                fn = click.option(f"{flag}/--no-{flag[2:]}", default=default, show_default=True, help=help_text)(fn)
            elif typing.get_origin(hints[f.name]) is tuple:
                fn = click.option(flag, type=kind, multiple=True, default=default, show_default=True,
                                  help=help_text)(fn)
            else:
                fn = click.option(flag, type=kind, default=default, show_default=not optional or default is not None,
                                  help=help_text)(fn)
        return fn

    return decorate


def settings_from_options(settings_cls: type, options: dict[str, Any]) -> Any:
    """The settings dataclass from a command's keyword arguments (extra keys are ignored)."""
    names = {f.name for f in dataclasses.fields(settings_cls)}
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in options.items() if k in names}
    return settings_cls(**values)
