"""`genloom train var`: the embedded default var-shapes."""

from __future__ import annotations

import click


@click.command("var")
@click.option("--out", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder for var_shapes.safetensors and var_shapes_vae.safetensors.")
@click.option("--seed", default=0, show_default=True)
@click.option("--vae-steps", default=2000, show_default=True)
@click.option("--var-steps", default=3000, show_default=True)
@click.option("--train-size", default=20_000, show_default=True)
@click.option("--checkpoint-every", default=0, show_default=True, help="Also save the transformer every N steps.")
@click.option("--vae", default=None, type=click.Path(dir_okay=False), help="Use this VQVAE (skip its training).")
@click.option("--init", default=None, type=click.Path(dir_okay=False),
              help="Continue the transformer from these weights.")
@click.option("--var-lr", default=1e-3, show_default=True)
@click.option("--warmup", default=200, show_default=True, help="Transformer learning-rate warm-up steps.")
@click.option("--threads", default=2, show_default=True, help="torch threads (results are reproducible per count).")
def train_var(out: str, seed: int, vae_steps: int, var_steps: int, train_size: int, checkpoint_every: int,
              vae: str | None, init: str | None, var_lr: float, warmup: int, threads: int) -> None:
    """Train the embedded VAR default (VQVAE, then transformer) on the shapes dataset."""
    import torch

    from .train import TrainSettings, train_var_shapes

    torch.set_num_threads(threads)
    train_var_shapes(out, TrainSettings(seed=seed, vae_steps=vae_steps, var_steps=var_steps, train_size=train_size,
                                               checkpoint_every=checkpoint_every, vae=vae, init=init,
                                               var_lr=var_lr, warmup=warmup),
                     log=click.echo)
