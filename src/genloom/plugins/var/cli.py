"""`genloom train var`: the embedded default var-shapes."""

from __future__ import annotations

from typing import Any

from ...cli.settings import train_command
from .settings import VARTrainSettings


def _trainer() -> Any:
    from .train import train_var_shapes

    return train_var_shapes


train_var = train_command(
    "var", VARTrainSettings, _trainer,
    "Train the embedded VAR default (VQVAE, then transformer) on the shapes dataset.",
    "var_shapes.safetensors, var_shapes_vae.safetensors, checkpoints and resumable states",
    state="var_shapes_state.safetensors", threads=2)
