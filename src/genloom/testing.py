"""Conformance kit for plugin authors: run these in your own test suite.

    from genloom.testing import check_plugin

    def test_my_plugin_conforms():
        import genloom_foo
        check_plugin("foo", genloom_foo)

Each check raises :class:`ConformanceError` (an ``AssertionError``) naming the broken rule. They use small
requests (two images) and run on the CPU by default; our own built-ins are held to the same checks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .engine.engine import Engine
from .engine.errors import InvalidRequest
from .engine.specs import GuidanceSpec, ModelSpec, Paradigm, SamplerSpec


class ConformanceError(AssertionError):
    """A plugin contribution that breaks genloom's contract."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


def isolated_engine(plugins: Sequence[tuple[str, object]] = ()) -> Engine:
    """An engine with the built-ins and the given plugin objects only, failing loudly."""
    return Engine(third_party=False, strict=True, plugins=plugins)


def check_plugin(name: str, plugin: object, *, device: str = "cpu", weights: dict[str, str] | None = None) -> Engine:
    """Load ``plugin`` alone (plus built-ins) and run the checks for everything it registers."""
    engine = isolated_engine([(name, plugin)])
    record = next(r for r in engine.plugin_report if r.name == name)
    _require(record.ok, f"plugin {name!r} did not load: {record.error}")
    _require(bool(record.contributions), f"plugin {name!r} loaded but registered nothing")
    for model in record.contributions.get("models", []):
        check_model(engine, model, device=device, weights=(weights or {}).get(model))
    for sampler in record.contributions.get("samplers", []):
        check_sampler_spec(engine.samplers[sampler])
    for policy in record.contributions.get("guidance", []):
        check_guidance_policy(engine.guidance[policy])
    return engine


def check_model_spec(spec: ModelSpec) -> None:
    """The static rules of a ModelSpec."""
    _require(isinstance(spec.paradigm, Paradigm), f"{spec.name}: paradigm must be a Paradigm")
    _require(callable(spec.factory), f"{spec.name}: factory must be callable")
    _require(spec.num_classes >= 0, f"{spec.name}: num_classes must be >= 0")
    _require(spec.image_size > 0, f"{spec.name}: image_size must be > 0")
    if spec.null_class is not None:
        _require(spec.num_classes > 0, f"{spec.name}: a null class needs a class-conditional model")
    if spec.class_names:
        _require(len(spec.class_names) == spec.num_classes,
                 f"{spec.name}: {len(spec.class_names)} class names for {spec.num_classes} classes")
    _require(bool(spec.description), f"{spec.name}: give a one-line description (shown by `genloom models`)")


def check_sampler_spec(spec: SamplerSpec) -> None:
    _require(isinstance(spec.paradigm, Paradigm), f"{spec.name}: paradigm must be a Paradigm")
    _require(callable(spec.factory), f"{spec.name}: factory must be callable")
    _require(spec.default_steps >= 1, f"{spec.name}: default_steps must be >= 1")


def check_guidance_spec(spec: GuidanceSpec) -> None:
    _require(callable(spec.factory), f"{spec.name}: factory must be callable")
    _require(bool(spec.paradigms), f"{spec.name}: declare the paradigms the policy supports")
    _require(Paradigm.ONE_STEP not in spec.paradigms, f"{spec.name}: one-step models take no guidance")


def check_guidance_policy(spec: GuidanceSpec, scale: float = 3.0, **params: Any) -> None:
    """Build the policy and drive one diffusion evaluation and one cached (next-scale) step through the branch
    protocol with fabricated outputs: requests are well-formed, ``combine`` returns a finite prediction of the
    right shape, and a conditional-only request leaves the conditional rows alone."""
    import torch

    from .engine.guidance import SPACES, BranchOutputs, BranchRequest, StepInfo

    check_guidance_spec(spec)
    policy = spec.factory(scale=scale, **params)
    for attr in ("request", "combine", "init_state"):
        _require(callable(getattr(policy, attr, None)), f"{spec.name}: the policy has no {attr}()")
    _require(getattr(policy, "space", None) in SPACES, f"{spec.name}: declare the policy's space, one of {SPACES}")
    b = 3
    gen = torch.Generator().manual_seed(0)
    for paradigm, info in (
        (Paradigm.DIFFUSION, StepInfo(step=2, num_steps=5, batch_size=b, time=0.5, prediction_type="eps",
                                      sigma=torch.full((b,), 0.6), alpha=torch.full((b,), 0.8))),
        (Paradigm.NEXT_SCALE, StepInfo(step=1, num_steps=4, batch_size=b, time=0.66, prediction_type="logits",
                                       cached=True)),
    ):
        if paradigm not in spec.paradigms:
            continue
        state = policy.init_state(b)
        requests = policy.request(info, state)
        _require(isinstance(requests, list) and all(isinstance(r, BranchRequest) for r in requests),
                 f"{spec.name}: request() must return a list of BranchRequest")
        shape = (b, 4, 2, 2) if paradigm is Paradigm.DIFFUSION else (b, 7)
        outs = {"cond": torch.randn(shape, generator=gen)}
        rows = {"cond": torch.ones(b, dtype=torch.bool)}
        for r in requests:
            _require(r.rows.shape == (b,), f"{spec.name}: branch {r.name!r} has a row mask of the wrong shape")
            full = torch.full(shape, torch.nan)
            full[r.rows] = torch.randn(shape, generator=gen)[r.rows]
            outs[r.name], rows[r.name] = full, r.rows
        x = torch.randn(shape, generator=gen)
        pred = policy.combine(info, BranchOutputs(outs, rows, x, info), state)
        _require(isinstance(pred, torch.Tensor) and tuple(pred.shape) == shape,
                 f"{spec.name}: combine() must return a tensor shaped like the conditional output {shape}")
        _require(bool(torch.isfinite(pred).all()), f"{spec.name}: combine() returned NaN/inf (did it read a row "
                                                   f"a branch did not evaluate?)")


def check_model(engine: Engine, name: str, *, device: str = "cpu", weights: str | None = None,
                labels: Sequence[int] | None = None) -> None:
    """Load the model and check shapes, value range, determinism, per-image seeding and input validation."""
    import torch

    spec = engine.models[name]
    check_model_spec(spec)
    pipe = engine.load(name, weights=weights, device=device)
    kwargs: dict[str, Any] = {"num_images": 2} if spec.num_classes == 0 else {
        "labels": list(labels) if labels is not None else [0, spec.num_classes - 1]}
    first = pipe(seed=123, output_type="pt", **kwargs)
    images = first.images
    size = spec.image_size
    _require(tuple(images.shape) == (2, 3, size, size),
             f"{name}: expected images of shape (2, 3, {size}, {size}), got {tuple(images.shape)}")
    _require(bool(torch.isfinite(images).all()), f"{name}: images contain NaN or inf")
    _require(float(images.min()) >= 0 and float(images.max()) <= 1, f"{name}: 'pt' images must lie in [0, 1]")
    _require(len(first.nfe) == 2 and all(n >= 1 for n in first.nfe), f"{name}: NFE must be counted per image")
    again = pipe(seed=123, output_type="pt", **kwargs)
    _require(torch.equal(images, again.images), f"{name}: the same seed gave different images")
    alone_kwargs = dict(kwargs)
    if "labels" in alone_kwargs:
        alone_kwargs["labels"] = alone_kwargs["labels"][1:]
    else:
        alone_kwargs["num_images"] = 1
    alone = pipe(seed=[124], output_type="pt", **alone_kwargs)
    batched = pipe(seed=123, output_type="pt", batch_invariant=True, **kwargs)
    _require(torch.equal(alone.images[0], batched.images[1]),
             f"{name}: image with seed 124 differs alone and in a batch (per-image seeding broken)")
    _require(math.isclose(float((alone.images[0] - images[1]).abs().max()), 0.0, abs_tol=1e-3),
             f"{name}: batched and single-image arithmetic differ by more than 1e-3")
    _require(pipe(seed=123, output_type="pt", **kwargs).manifest["model"] == name, f"{name}: manifest names no model")
    if spec.num_classes > 0:
        try:
            pipe(labels=[spec.num_classes])
        except InvalidRequest:
            pass
        else:
            raise ConformanceError(f"{name}: an out-of-range label was accepted")
