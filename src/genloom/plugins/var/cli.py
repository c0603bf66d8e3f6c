"""`genloom train var`: the embedded default var-shapes."""

from __future__ import annotations

from typing import Any

import click

from ...cli.settings import settings_from_options, settings_options
from .settings import VARTrainSettings


@click.command("var")
@click.option("--out", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder for var_shapes.safetensors and var_shapes_vae.safetensors.")
@click.option("--threads", default=2, show_default=True, help="torch threads (results are reproducible per count).")
@settings_options(VARTrainSettings)
def train_var(out: str, threads: int, **options: Any) -> None:
    """Train the embedded VAR default (VQVAE, then transformer) on the shapes dataset."""
    from ...training import quiet_threads

    quiet_threads(threads)
    from .train import train_var_shapes

    train_var_shapes(out, settings_from_options(VARTrainSettings, options), log=click.echo)
