"""`genloom train lamamba`: the embedded lamamba-shapes."""

from __future__ import annotations

from typing import Any

from ...cli.settings import train_command
from ...diffusion_settings import DiffusionTrainSettings


def _trainer() -> Any:
    from .train import train_lamamba_shapes

    return train_lamamba_shapes


train_lamamba = train_command(
    "lamamba", DiffusionTrainSettings, _trainer,
    "Train the embedded LaMamba-Diff default on the shapes dataset, on an autoencoder's latents or in pixels (EMA "
    "weights are saved).", "lamamba_shapes.safetensors, its checkpoints and resumable states",
    state="lamamba_shapes_state.safetensors")
