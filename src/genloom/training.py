"""Small helpers shared by the in-repo trainers of the embedded defaults."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from .engine.weights import save_state_dict


def dihedral_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random quarter turn, then a random horizontal flip: every shapes class is closed under them."""
    x = torch.rot90(x, int(torch.randint(4, (1,), generator=gen)), dims=(2, 3))
    return x.flip(3) if bool(torch.randint(2, (1,), generator=gen)) else x


def cosine_warmup(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up, then a cosine decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def random_batch(images: torch.Tensor, batch_size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of a random batch (with replacement) and those images, augmented; draws from ``gen`` in that order."""
    pick = torch.randint(len(images), (batch_size,), generator=gen)
    return pick, dihedral_augment(images[pick], gen)


def set_learning_rate(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def checkpoint_if_due(state: Callable[[], Mapping[str, torch.Tensor]], out_dir: Path | None, stem: str,
                      step: int, every: int, total: int) -> None:
    """Write ``<stem>_step<N>.safetensors`` every ``every`` steps before the last (which the trainer saves itself)."""
    if out_dir is None or not every or step % every or step >= total:
        return
    save_state_dict(state(), Path(out_dir) / f"{stem}_step{step}.safetensors", metadata={"step": str(step)})
