"""f-distill (Xu, Nie, Vahdat): one-step students distilled from a registered diffusion teacher by f-divergence
distribution matching, as a built-in plugin.

``genloom distill --teacher NAME --divergence js`` trains a student (:mod:`.trainer`); ``fdistill`` loads any
student file (``weights=``), which names its teacher: the student is the teacher's family around the student's
network, evaluated once at the top noise level. Guidance is distilled in, so a student refuses it.

``lamamba-shapes-fdistill-js`` is the embedded student: ``lamamba-shapes``' 16 500-step weights (the teacher's
until 2026-12-04, now ``checkpoints/lamamba_shapes_16500.safetensors``; the sha256 it records) distilled with
Jensen–Shannon (its lineage and scores: BENCHMARKS.md, f-distill).
"""

from __future__ import annotations

from typing import Any

from ...data.constants import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES
from ...engine.hookspecs import hookimpl
from ...engine.specs import CommandSpec, ModelSpec, Paradigm

GENLOOM_PLUGIN_API = "1.0"
#: embedded students, named ``<teacher>-fdistill-<divergence>`` → (asset, what the description adds)
EMBEDDED_STUDENTS = {
    "lamamba-shapes-fdistill-js": ("asset:lamamba_shapes_fdistill_js.safetensors",
                                   "lamamba-shapes (its 16 500-step weights) distilled with Jensen–Shannon, its CFG + "
                                   "autoguidance baked in"),
}


def _build(options: Any) -> Any:
    from .student import build_student

    return build_student(options)


def _student_spec(name: str, description: str, default_weights: str | None = None) -> ModelSpec:
    """A one-step student model: classes and size are the embedded teacher's (a loaded student takes its own
    teacher's)."""
    return ModelSpec(name=name, factory=_build, paradigm=Paradigm.ONE_STEP, description=description,
                     num_classes=NUM_CLASSES, image_size=IMAGE_SIZE, class_names=CLASS_NAMES,
                     default_weights=default_weights, default_sampler="one-step", default_steps=1)


@hookimpl
def register_models(register) -> None:  # type: ignore[no-untyped-def]
    register(_student_spec("fdistill", "any f-distill student: weights= a file written by `genloom distill` (it "
                                       "names its teacher, divergence and baked-in CFG; classes and size come from "
                                       "the teacher)"))
    for name, (asset, what) in EMBEDDED_STUDENTS.items():
        register(_student_spec(name, f"a one-step f-distill student trained in this repo: {what} (one network "
                                     f"evaluation per image; embedded)", default_weights=asset))


@hookimpl
def register_commands(register) -> None:  # type: ignore[no-untyped-def]
    from .cli import distill_command

    register(CommandSpec(name="distill", command=distill_command,
                         description="distil a diffusion model into a one-step f-distill student"))
