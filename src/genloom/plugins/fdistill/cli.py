"""`genloom distill`: its options come from :class:`.settings.DistillSettings`."""

from __future__ import annotations

from typing import Any

from ...cli.settings import train_command
from .settings import DistillSettings


def _trainer() -> Any:
    from .trainer import distill

    return distill


distill_command = train_command(
    "distill", DistillSettings, _trainer,
    "Distil a registered diffusion model (--teacher) into a one-step student by f-divergence distribution matching "
    "(f-distill); load the result with genloom.load('fdistill', weights=...).",
    "<teacher>-fdistill-<divergence>.safetensors, its checkpoints and resumable states",
    state="<teacher>-fdistill-<divergence>_state.safetensors")
