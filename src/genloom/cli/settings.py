"""Click options generated from a trainer's settings dataclass: each setting is declared once (name, type,
default, help in ``field(metadata={"help": ...})``) and the command line follows from it. Torch-free."""

from __future__ import annotations

import dataclasses
import os
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


def resumed_options(settings_cls: type, options: dict[str, Any], resume: str, given: set[str]) -> dict[str, Any]:
    """The options of a ``--resume`` leg: a setting not ``given`` on this command line keeps the value the state
    recorded (the run's own choice, not the command's default), except those chosen anew for each leg (``PER_LEG``:
    device, leg length, a start file). One given explicitly wins — and where the run's configuration must stay the
    same, the trainer refuses it before any work. A file that is no training state is left to the trainer's error."""
    from pathlib import Path

    from ..diffusion_settings import PER_LEG
    from ..training import recorded_settings

    saved = recorded_settings(resume) if Path(resume).is_file() else None
    if saved is None:
        return options
    kept = {f.name: saved[f.name] for f in dataclasses.fields(settings_cls)
            if f.name in saved and f.name not in given and not f.metadata.get(PER_LEG)}
    return {**options, **kept}


def train_command(name: str, settings_cls: type, trainer: Callable[[], Callable[..., Any]], summary: str,
                  outputs: str, state: str | None = None, threads: int = 1) -> click.Command:
    """A `genloom train NAME` command: ``--out``, ``--threads``, ``--resume`` (when the trainer writes a resumable
    ``state`` file) and one option per setting. ``trainer()`` imports and returns the training function lazily
    (torch stays out of CLI start-up); it is called as ``train(out, settings, [resume=...,] log=click.echo)``."""

    def run(out: str, threads: int, resume: str | None = None, **options: Any) -> None:
        from ..training import quiet_threads

        quiet_threads(threads)
        if resume is not None:
            ctx = click.get_current_context()
            given = {k for k in options if ctx.get_parameter_source(k) is not click.core.ParameterSource.DEFAULT}
            options = resumed_options(settings_cls, options, resume, given)
            if ctx.get_parameter_source("out") is click.core.ParameterSource.DEFAULT:
                out = os.path.dirname(resume) or "."  # the run goes on beside its state
        extra = {"resume": resume} if state is not None else {}
        trainer()(out, settings_from_options(settings_cls, options), log=click.echo, **extra)

    run.__doc__ = summary
    command = settings_options(settings_cls)(run)
    if state is not None:
        command = click.option("--resume", default=None, type=click.Path(dir_okay=False),
                               help=f"Continue from a {state} written by an earlier leg; settings not given here are "
                                    "the run's own.")(command)
    command = click.option("--threads", default=threads, show_default=True,
                           help="torch threads (results are reproducible per count).")(command)
    command = click.option("--out", default=".", show_default=True, type=click.Path(file_okay=False),
                           help=f"Folder for {outputs} (with --resume: the state's folder).")(command)
    return click.command(name, help=summary)(command)
