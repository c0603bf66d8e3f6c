"""`genloom train autoencoder`."""

from __future__ import annotations

from typing import Any

import click

from ...cli.settings import settings_from_options, settings_options
from .settings import AutoencoderSettings


@click.command("autoencoder")
@click.option("--out", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder for shapes_ae.safetensors, its checkpoints and resumable states.")
@click.option("--resume", default=None, type=click.Path(dir_okay=False),
              help="Continue from a shapes_ae_state.safetensors written by an earlier leg.")
@click.option("--threads", default=1, show_default=True, help="torch threads (results are reproducible per count).")
@settings_options(AutoencoderSettings)
def train_autoencoder(out: str, resume: str | None, threads: int, **options: Any) -> None:
    """Train the embedded latent autoencoder on the shapes dataset."""
    from ...training import quiet_threads

    quiet_threads(threads)
    from .train import train_shapes_ae

    train_shapes_ae(out, settings_from_options(AutoencoderSettings, options), resume=resume, log=click.echo)
