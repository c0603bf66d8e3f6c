"""`genloom train classifier`."""

from __future__ import annotations

import click


@click.command("classifier")
@click.option("--out", default="shapes_classifier.safetensors", show_default=True,
              type=click.Path(dir_okay=False), help="Where to write the safetensors weights.")
@click.option("--seed", default=0, show_default=True)
@click.option("--train-size", default=30_000, show_default=True)
@click.option("--epochs", default=8, show_default=True)
@click.option("--threads", default=2, show_default=True, help="torch threads (results are reproducible per count).")
def train_classifier(out: str, seed: int, train_size: int, epochs: int, threads: int) -> None:
    """Train the reference classifier of the embedded shapes dataset."""
    import torch

    from .train import train_shapes_classifier

    torch.set_num_threads(threads)
    train_shapes_classifier(out, seed=seed, train_size=train_size, epochs=epochs, log=click.echo)
