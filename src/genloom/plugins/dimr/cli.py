"""`genloom train dimr`: the embedded default dimr-shapes."""

from __future__ import annotations

import click


@click.command("dimr")
@click.option("--out", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder for dimr_shapes.safetensors.")
@click.option("--seed", default=0, show_default=True)
@click.option("--steps", default=5000, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--train-size", default=20_000, show_default=True)
@click.option("--init", default=None, type=click.Path(dir_okay=False), help="Fine-tune from these weights.")
@click.option("--lr", default=1e-3, show_default=True)
@click.option("--checkpoint-every", default=0, show_default=True, help="Also save the EMA weights every N steps.")
@click.option("--threads", default=2, show_default=True, help="torch threads (results are reproducible per count).")
def train_dimr(out: str, seed: int, steps: int, batch_size: int, train_size: int, init: str | None, lr: float,
               checkpoint_every: int, threads: int) -> None:
    """Train the embedded DiMR default on the shapes dataset (EMA weights are saved)."""
    import torch

    from .train import TrainSettings, train_dimr_shapes

    torch.set_num_threads(threads)
    train_dimr_shapes(out, TrainSettings(seed=seed, steps=steps, batch_size=batch_size, train_size=train_size,
                                                   init=init, lr=lr, checkpoint_every=checkpoint_every),
                      log=click.echo)
