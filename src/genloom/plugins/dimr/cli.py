"""`genloom train dimr`: the embedded default dimr-shapes."""

from __future__ import annotations

from typing import Any

import click

from ...cli.settings import settings_from_options, settings_options
from .settings import DiMRTrainSettings


@click.command("dimr")
@click.option("--out", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder for dimr_shapes.safetensors, its checkpoints and resumable states.")
@click.option("--resume", default=None, type=click.Path(dir_okay=False),
              help="Continue from a dimr_shapes_state.safetensors written by an earlier leg.")
@click.option("--threads", default=1, show_default=True, help="torch threads (results are reproducible per count).")
@settings_options(DiMRTrainSettings)
def train_dimr(out: str, resume: str | None, threads: int, **options: Any) -> None:
    """Train the embedded DiMR default on the shapes dataset (EMA weights are saved)."""
    from ...training import quiet_threads

    quiet_threads(threads)
    from .train import train_dimr_shapes

    train_dimr_shapes(out, settings_from_options(DiMRTrainSettings, options), resume=resume, log=click.echo)
