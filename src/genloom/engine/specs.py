"""Typed registry entries: what a plugin contributes, described without building anything.

A spec is cheap to create (no torch import, no weights): building happens through its factory, when asked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .options import Option


class Paradigm(str, Enum):
    """How a family turns noise and labels into an image; it selects the sampler loop."""

    DIFFUSION = "diffusion"
    NEXT_SCALE = "next-scale"
    ONE_STEP = "one-step"


@dataclass(frozen=True)
class ModelSpec:
    """A loadable model.

    `factory(options)` receives a :class:`genloom.engine.pipeline.LoadOptions` and returns a
    :class:`genloom.engine.model.GenerativeModel`. `default_weights` is what `load(name)` uses when the
    user gives no `weights=`: an embedded asset name (``asset:<file>``), a path, or a hub id (``hf://...``).
    ``load_options`` declares the family's own keywords of ``genloom.load`` (``vae=``, ``num_heads=``…): they are
    checked before the factory runs, and the CLI (``--vae``, ``--load-option``) and the UI derive from them.
    ``default_steps`` of a next-scale model is its number of scales. ``default_guidance_options`` (e.g. a step
    window) go with ``default_guidance`` as ``default_guidance_scale`` does: they apply when the request uses that
    policy and names none of its options.
    """

    name: str
    factory: Callable[..., Any]
    paradigm: Paradigm
    description: str = ""
    num_classes: int = 0
    image_size: int = 0
    null_class: int | None = None
    class_names: Sequence[str] = ()
    default_weights: str | None = None
    default_sampler: str | None = None
    default_guidance: str | None = None
    default_guidance_scale: float | None = None
    default_guidance_options: Mapping[str, Any] = field(default_factory=dict)
    default_steps: int | None = None
    load_options: tuple[Option, ...] = ()
    plugin: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)



@dataclass(frozen=True)
class GuidanceSpec:
    """A guidance policy; `factory(scale=..., **options)` returns the policy object the sampler drives.

    ``options`` declares every keyword the factory takes besides ``scale`` (see :mod:`genloom.engine.options`):
    the API validates requests against it, the CLI and the UI derive their help and forms from it. ``context``:
    the factory also receives ``context=`` (:class:`genloom.engine.guidance.GuidanceContext`: the loaded model,
    and a loader of sibling checkpoints for guide networks)."""

    name: str
    factory: Callable[..., Any]
    description: str = ""
    paradigms: frozenset[Paradigm] = frozenset({Paradigm.DIFFUSION, Paradigm.NEXT_SCALE})
    requires: frozenset[str] = frozenset()
    options: tuple[Option, ...] = ()
    context: bool = False
    plugin: str = ""


@dataclass(frozen=True)
class SamplerSpec:
    """A sampling loop for one paradigm; `factory(**options)` returns an object with `sample(...)`.

    ``options`` declares its keywords; ``open_options`` lets undeclared ones through to the factory, which then
    checks them itself (diffusers scheduler config overrides)."""

    name: str
    factory: Callable[..., Any]
    paradigm: Paradigm
    description: str = ""
    default_steps: int = 1
    options: tuple[Option, ...] = ()
    open_options: bool = False
    plugin: str = ""


@dataclass(frozen=True)
class ClassifierSpec:
    """An image classifier (for guidance and metrics); `factory(options)` returns it built and loaded."""

    name: str
    factory: Callable[..., Any]
    num_classes: int = 0
    image_size: int = 0
    description: str = ""
    class_names: Sequence[str] = ()
    default_weights: str | None = None
    plugin: str = ""


@dataclass(frozen=True)
class KernelSpec:
    """An operation a network asks the dispatcher (:mod:`genloom.kernels.dispatch`) for by name.

    ``reference`` is the exact PyTorch computation (what ``GENLOOM_KERNELS=torch`` runs: the official code's
    arithmetic); ``fast`` an equivalent PyTorch form that ``auto`` prefers off CUDA (chunked, fused); ``triton``
    the GPU kernel ``auto`` prefers on CUDA. ``supports(*args, **kwargs)`` returns why the Triton kernel cannot
    take a call (dtype, shape), or None. All callables share the reference's signature."""

    name: str
    reference: Callable[..., Any]
    triton: Callable[..., Any] | None = None
    fast: Callable[..., Any] | None = None
    supports: Callable[..., str | None] | None = None
    description: str = ""
    plugin: str = ""


SPEC_TYPES = {
    "models": ModelSpec,
    "guidance": GuidanceSpec,
    "samplers": SamplerSpec,
    "classifiers": ClassifierSpec,
    "kernels": KernelSpec,
}


@dataclass(frozen=True)
class CommandSpec:
    """A CLI command contributed by a plugin (a `click.Command`); ``group="train"`` makes it `genloom train NAME`."""

    name: str
    command: Any
    description: str = ""
    group: str | None = None
    plugin: str = ""


SPEC_TYPES["commands"] = CommandSpec
