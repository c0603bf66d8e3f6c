"""`genloom train dimr`: the embedded default dimr-shapes."""

from __future__ import annotations

from typing import Any

from ...cli.settings import train_command
from ...diffusion_settings import DiffusionTrainSettings


def _trainer() -> Any:
    from .train import train_dimr_shapes

    return train_dimr_shapes


train_dimr = train_command(
    "dimr", DiffusionTrainSettings, _trainer,
    "Train the embedded DiMR default on the shapes dataset, in pixels or on an autoencoder's latents (EMA weights "
    "are saved).", "dimr_shapes.safetensors, its checkpoints and resumable states",
    state="dimr_shapes_state.safetensors")
