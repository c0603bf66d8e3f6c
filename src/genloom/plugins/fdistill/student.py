"""The f-distill student family: a one-step generator that is the teacher's family around the student network.

A student file is a checkpoint of the teacher's family (the same keys) whose metadata names the teacher, its load
options and configuration, the divergence and the guidance baked in (CFG's strength and window, an autoguidance
guide). Loading it builds the teacher's family through the engine (``LoadOptions.load_model``) with the student's
weights — the teacher's own weights are not needed — and sampling is one network evaluation: ``x̂0(σ_T·z, T, c)``,
decoded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import torch

from ...engine import weights
from ...engine.errors import InvalidRequest, WeightsError
from ...engine.model import GenerativeModel
from .prediction import one_step
from .settings import METADATA_KEY


@dataclass(frozen=True)
class StudentConfig:
    """What the manifest of every generation records about a student."""

    teacher: str
    divergence: str
    guidance_scale: float
    baked_guide: dict[str, Any] | None = None  # CFG's window and the autoguidance guide baked in, if any
    teacher_weights: str = ""
    teacher_sha256: str = ""
    teacher_options: dict[str, Any] | None = None
    teacher_config: dict[str, Any] | None = None
    t_top: int = 999
    iterations: int = 0  # in all, those of a student it was started from (--init-student) included
    train_seconds: float = 0.0
    init_student: dict[str, Any] | None = None  # the student file it was started from, if any


def teacher_guidance(c: StudentConfig) -> dict[str, Any]:
    """The teacher's guidance that the student baked in, as the keyword arguments of a pipeline call (what a
    student is compared against)."""
    return guidance_request(c.guidance_scale, c.baked_guide)


def guidance_request(guidance_scale: float, baked_guide: dict[str, Any] | None) -> dict[str, Any]:
    """CFG's w and what is baked in beyond it (its window, an autoguidance guide) → pipeline keywords."""
    baked = baked_guide or {}
    guide = baked.get("guide_weights")
    if guidance_scale == 1.0:
        return {"guidance": "autoguidance", "guidance_scale": baked["guide_scale"], "guide_weights": guide} \
            if guide else {"guidance": "none"}  # not None: a pipeline reads None as the model's default
    request: dict[str, Any] = {"guidance": "cfg", "guidance_scale": guidance_scale}
    if baked.get("cfg_stop", 1.0) < 1.0:
        request["stop"] = baked["cfg_stop"]
    if guide:
        request.update({"guidance": "cfg+autoguidance", "autoguidance.scale": baked["guide_scale"],
                        "autoguidance.guide_weights": guide})
    return request


def check_teacher_sha256(c: StudentConfig, student: str, sha256: str, given: str, hint: str = "",
                         unrecorded_ok: bool = False) -> None:
    """A student's teacher is the weights whose sha256 it recorded (a registered teacher may have been retrained
    since): other weights are refused, naming the way out. ``given`` says where the weights came from. A student
    that recorded none is refused too unless ``unrecorded_ok`` (scoring it can go on; training on it cannot)."""
    if sha256 == c.teacher_sha256 or (unrecorded_ok and not c.teacher_sha256):
        return
    recorded = f"with sha256 {c.teacher_sha256[:12]}…" if c.teacher_sha256 else "whose sha256 it did not record"
    raise InvalidRequest(f"{student} was distilled from {c.teacher!r} weights {recorded}, not from {given} "
                         f"({sha256[:12]}…): pass the teacher it was distilled from with --teacher-weights{hint}.")


def read_student_config(path: Any) -> StudentConfig:
    meta = weights.read_metadata(path)
    if METADATA_KEY not in meta:
        raise WeightsError(f"{str(path)!r} is not an f-distill student (no {METADATA_KEY!r} metadata); students are "
                           f"written by `genloom distill`. A diffusion checkpoint loads with its own family.")
    info = json.loads(meta[METADATA_KEY])
    return StudentConfig(**{k: info[k] for k in StudentConfig.__dataclass_fields__ if k in info})


@dataclass
class FDistillStudent(GenerativeModel):
    """The one-step protocol over the teacher family's model ``inner`` loaded with the student's weights."""

    inner: Any = None

    @property
    def noise_shape(self) -> tuple[int, ...]:
        return tuple(self.inner.latent_shape)

    def generate(self, noise: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.inner.decode(one_step(self.inner, noise, labels, self.config.t_top))


def build_student(options: Any) -> FDistillStudent:
    """The ``ModelSpec`` factory of ``fdistill`` and of every registered student."""
    if options.weights is None:
        raise WeightsError(f"Model {options.name!r} needs weights=: a student file written by `genloom distill`.")
    c = read_student_config(options.weights.path)
    if options.load_model is None:
        raise WeightsError("An f-distill student is loaded through an engine (genloom.load / Engine.load).")
    # the reference as given (not the resolved path), so the manifest says asset:… for an embedded student
    inner = options.load_model(c.teacher, weights=options.weights.source, device=options.device, dtype=options.dtype,
                               config=c.teacher_config, **(c.teacher_options or {}))
    teacher_spec = inner.spec
    spec = replace(options.spec, num_classes=teacher_spec.num_classes, class_names=teacher_spec.class_names,
                   image_size=teacher_spec.image_size, null_class=None)
    return FDistillStudent(spec=spec, networks=dict(inner.networks), weights=list(inner.weights), config=c,
                           inner=inner)
