"""The embedded latent autoencoder ``shapes-ae`` (a diffusers AutoencoderKL, 32×32×3 ↔ 8×8×4) shared by the
latent families, and `genloom train autoencoder`.

The asset is self-describing: its safetensors metadata holds the AutoencoderKL config and the latent scaling
factor, so any family's ``vae=`` loader builds it from the file alone (``vae="asset:shapes_ae.safetensors"``).
"""

from __future__ import annotations

from ...engine.hookspecs import hookimpl
from ...engine.specs import CommandSpec

GENLOOM_PLUGIN_API = "1.0"


@hookimpl
def register_commands(register) -> None:  # type: ignore[no-untyped-def]
    from .cli import train_autoencoder

    register(CommandSpec(name="autoencoder", command=train_autoencoder, group="train",
                         description="train the embedded latent autoencoder shapes-ae"))
