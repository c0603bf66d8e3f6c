"""Validation of a generation request: every bad input becomes a typed, explained error up front."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidRequest, NotRegistered, suggest
from .options import route_options
from .registry import Registry
from .seeding import RNG_MODES, seeds_for
from .specs import GuidanceSpec, ModelSpec, Paradigm, SamplerSpec

OUTPUT_TYPES = ("pil", "pt", "np", "latent")
#: what a Pipeline call can take as generation defaults (``genloom.load(..., sampler=, steps=, ...)``)
GENERATION_DEFAULTS = ("sampler", "steps", "guidance", "guidance_scale")
NO_GUIDANCE = (None, "none")
DEFAULT_MAX_BATCH = 16


@dataclass(frozen=True)
class GenerationRequest:
    """A checked request; ``as_kwargs()`` gives the arguments that reproduce it. ``labels`` None on a
    class-conditional model: drawn from each image's own random stream at sampling time."""

    labels: list[int] | None
    seeds: list[int]
    sampler: SamplerSpec
    steps: int
    batch_size: int
    output_type: str
    rng: str
    guidance: GuidanceSpec | None
    guidance_scale: float | None
    guidance_options: dict[str, Any] = field(default_factory=dict)
    sampler_options: dict[str, Any] = field(default_factory=dict)

    @property
    def num_images(self) -> int:
        return len(self.seeds)

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "seed": self.seeds,
            "sampler": self.sampler.name,
            "steps": self.steps,
            "guidance": self.guidance.name if self.guidance else None,
            "guidance_scale": self.guidance_scale,
            "rng": self.rng,
            "batch_size": self.batch_size,
            **self.guidance_options,
            **self.sampler_options,
        }


def build_request(
    spec: ModelSpec,
    samplers: Registry[SamplerSpec],
    policies: Registry[GuidanceSpec],
    *,
    labels: Any = None,
    num_images: Any = None,
    seed: Any = None,
    guidance: str | None = None,
    guidance_scale: Any = None,
    sampler: str | None = None,
    steps: Any = None,
    batch_size: Any = None,
    output_type: str = "pil",
    rng: str = "image",
    options: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    reserved: tuple[str, ...] = (),
) -> GenerationRequest:
    """Check and normalise every argument of ``Pipeline.__call__`` against the model's spec.

    The one place defaults are decided: an argument given here, else the pipeline's ``defaults`` (set at
    ``genloom.load``), else the model spec's, else the sampler's."""
    options = dict(options or {})
    defaults = defaults or {}
    guidance = guidance if guidance is not None else defaults.get("guidance")
    guidance_scale = guidance_scale if guidance_scale is not None else defaults.get("guidance_scale")
    sampler = sampler if sampler is not None else defaults.get("sampler")
    steps = steps if steps is not None else defaults.get("steps")
    count = _count(num_images, "num_images", allow_none=True)
    label_list = _labels(spec, labels, count)
    n = len(label_list) if label_list is not None else (count if count is not None else 1)
    seeds = seeds_for(seed, n)

    if not isinstance(output_type, str) or output_type not in OUTPUT_TYPES:
        raise InvalidRequest(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}.")
    if rng not in RNG_MODES:
        raise InvalidRequest(f"rng must be one of {RNG_MODES}, got {rng!r}.")

    scale = _scale(guidance_scale)
    policy = _policy(spec, policies, guidance, scale)
    if policy is not None and scale is None and policy.name == spec.default_guidance:
        scale = spec.default_guidance_scale  # the model's own default policy comes with its default scale
    sampler_spec = _sampler(spec, samplers, sampler)
    steps_n = _steps(spec, sampler_spec, steps)
    bs = _count(batch_size, "batch_size", allow_none=True) or min(n, DEFAULT_MAX_BATCH)

    guidance_options, sampler_options = route_options(options, policy, sampler_spec, reserved)
    if policy is not None and policy.name == spec.default_guidance and not guidance_options:
        # the model's own default policy comes with its default options, checked like the user's
        guidance_options = route_options(spec.default_guidance_options, policy, None)[0]
    return GenerationRequest(
        labels=label_list, seeds=seeds, sampler=sampler_spec, steps=steps_n, batch_size=bs,
        output_type=output_type, rng=rng, guidance=policy, guidance_scale=scale,
        guidance_options=guidance_options, sampler_options=sampler_options,
    )


def _count(value: Any, name: str, allow_none: bool) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidRequest(f"{name} must be a positive integer, got {value!r}.")
    if value < 1:
        raise InvalidRequest(f"{name} must be at least 1, got {value}.")
    return int(value)


def _labels(spec: ModelSpec, labels: Any, count: int | None) -> list[int] | None:
    if spec.num_classes == 0:
        if labels is not None:
            raise InvalidRequest(f"Model {spec.name!r} is unconditional; drop labels= (use num_images=).")
        return None
    if labels is None:
        return None
    if hasattr(labels, "tolist") and not isinstance(labels, (str, bytes)):
        labels = labels.tolist()  # numpy arrays and torch tensors
    if isinstance(labels, (str, numbers.Integral)):
        labels = [labels]
    if not isinstance(labels, Sequence) or isinstance(labels, (bytes, bytearray)):
        raise InvalidRequest(f"labels must be an int, a class name, or a list of them; got {type(labels).__name__}.")
    if len(labels) == 0:
        raise InvalidRequest("labels is empty; give at least one class, or leave labels=None for random classes.")
    out = [_one_label(spec, lab) for lab in labels]
    if count is not None:
        if len(out) == 1:
            out = out * count
        elif len(out) != count:
            raise InvalidRequest(
                f"Got {len(out)} labels but num_images={count}; give one label per image, a single label, or "
                f"drop num_images."
            )
    return out


def _one_label(spec: ModelSpec, label: Any) -> int:
    if isinstance(label, str):
        names = list(spec.class_names)
        if label in names:
            return names.index(label)
        if is_integer_text(label):
            label = int(label)
        else:
            known = ", ".join(names) if names else "this model has no class names; use integers"
            raise InvalidRequest(f"Unknown class name {label!r}.{suggest(label, names)} Classes: {known}.")
    if isinstance(label, bool) or not isinstance(label, numbers.Integral):
        raise InvalidRequest(f"Each label must be an integer class index or class name, got {label!r}.")
    if not 0 <= label < spec.num_classes:
        raise InvalidRequest(
            f"Label {label} is out of range: model {spec.name!r} has classes 0..{spec.num_classes - 1}."
        )
    return int(label)


def _scale(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidRequest(f"guidance_scale must be a number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidRequest(f"guidance_scale must be finite, got {value}.")
    if value < 0:
        raise InvalidRequest(f"guidance_scale must be >= 0 (1 means no guidance), got {value}.")
    return value


def _policy(spec: ModelSpec, policies: Registry[GuidanceSpec], name: str | None,
            scale: float | None) -> GuidanceSpec | None:
    requested = name not in NO_GUIDANCE
    if spec.paradigm is Paradigm.ONE_STEP:
        if requested or scale is not None:
            raise InvalidRequest(
                f"Model {spec.name!r} is a one-step generator: guidance is distilled into it and cannot be "
                f"applied at sampling time. Drop guidance= and guidance_scale=."
            )
        return None
    if not requested:
        name = spec.default_guidance if name is None else None
    if name is None:
        if scale is not None:
            raise InvalidRequest("guidance_scale was given with guidance='none'; name a policy, e.g. guidance='cfg'.")
        return None
    if not isinstance(name, str):
        raise InvalidRequest(f"guidance must be a policy name, got {name!r}.")
    if "+" in name:  # a stack, e.g. "cfg+gfcg"
        from .stacking import stack_spec

        return stack_spec([_one_policy(spec, policies, part.strip()) for part in name.split("+")])
    return _one_policy(spec, policies, name)


def _one_policy(spec: ModelSpec, policies: Registry[GuidanceSpec], name: str) -> GuidanceSpec:
    try:
        policy = policies[name]
    except NotRegistered as exc:
        raise InvalidRequest(str(exc)) from None
    if spec.paradigm not in policy.paradigms:
        raise InvalidRequest(
            f"Guidance policy {name!r} does not support {spec.paradigm.value} models like {spec.name!r}."
        )
    if "null_class" in policy.requires and spec.null_class is None:
        raise InvalidRequest(
            f"Guidance {name!r} needs an unconditional (null-class) branch, but model {spec.name!r} was trained "
            f"without one. Use guidance='none' or a policy that needs no null class."
        )
    return policy


def _sampler(spec: ModelSpec, samplers: Registry[SamplerSpec], name: str | None) -> SamplerSpec:
    if name is not None and not isinstance(name, str):
        raise InvalidRequest(f"sampler must be a sampler name, got {name!r}.")
    name = name or spec.default_sampler
    if name is None:
        fitting = [s for s in samplers.values() if s.paradigm is spec.paradigm]
        if not fitting:
            raise InvalidRequest(f"No sampler for {spec.paradigm.value} models is registered.")
        return fitting[0]
    try:
        sampler = samplers[name]
    except NotRegistered as exc:
        raise InvalidRequest(str(exc)) from None
    if sampler.paradigm is not spec.paradigm:
        fitting = sorted(s.name for s in samplers.values() if s.paradigm is spec.paradigm)
        raise InvalidRequest(
            f"Sampler {name!r} is for {sampler.paradigm.value} models, but {spec.name!r} is "
            f"{spec.paradigm.value}; use one of {fitting}."
        )
    return sampler


def _steps(spec: ModelSpec, sampler: SamplerSpec, steps: Any) -> int:
    if steps is None:
        return spec.default_steps or sampler.default_steps
    n = _count(steps, "steps", allow_none=False)
    assert n is not None
    if spec.paradigm is Paradigm.ONE_STEP and n != 1:
        raise InvalidRequest(f"Model {spec.name!r} generates in one step; drop steps= (got {n}).")
    if spec.paradigm is Paradigm.NEXT_SCALE and spec.default_steps and n != spec.default_steps:
        raise InvalidRequest(
            f"Model {spec.name!r} predicts one scale per step and has {spec.default_steps} scales: steps must be "
            f"{spec.default_steps} (got {n}); a different schedule needs a model trained for it (config=)."
        )
    return n


def is_integer_text(text: str) -> bool:
    """``"3"``, ``"-1"``, ``" 12 "``: ASCII digits only (``int()`` would also take ``"٣"`` and choke on ``"²"``)."""
    body = text.strip().removeprefix("-")
    return body.isascii() and body.isdigit()
