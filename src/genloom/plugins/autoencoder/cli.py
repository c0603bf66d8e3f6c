"""`genloom train autoencoder`."""

from __future__ import annotations

from typing import Any

from ...cli.settings import train_command
from .settings import AutoencoderSettings


def _trainer() -> Any:
    from .train import train_shapes_ae

    return train_shapes_ae


train_autoencoder = train_command(
    "autoencoder", AutoencoderSettings, _trainer, "Train the embedded latent autoencoder on the shapes dataset.",
    "shapes_ae.safetensors, its checkpoints and resumable states", state="shapes_ae_state.safetensors")
