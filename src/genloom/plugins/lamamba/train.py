"""Training the embedded ``lamamba-shapes``: a small LaMamba-Diff on the 8×8×4 latents of ``shapes-ae`` (or on
pixels), through the shared diffusion trainer (:mod:`genloom.diffusion_training`). Its adaLN-Zero conditioning
gives every block the label, which DiMR's single class token did not learn to use on this CPU budget. The
embedded model predicts v on the cosine schedule with a fixed variance (``learn_sigma=False``, a configuration the
official code accepts), the recipe the trainer measures best on a CPU."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from ...data.constants import NUM_CLASSES
from ...diffusion_settings import SHAPES_NOISE, DiffusionTrainSettings
from ...diffusion_training import TrainFamily, train_diffusion
from ...training import divided_width
from .config import LaMambaConfig
from .model import DIT_SCHEDULE
from .network import LaMambaNetwork

SHAPES_SCHEDULE = replace(DIT_SCHEDULE, **SHAPES_NOISE)
SHAPES_LATENT_LAMAMBA = LaMambaConfig(dims=(64, 128), depths=(2, 2), bottleneck_depth=2, num_heads=(2, 4),
                                      ssm_ratio=1.0, window_size=4, latent_size=8, in_channels=4,
                                      learn_sigma=False, num_classes=NUM_CLASSES)
SHAPES_PIXEL_LAMAMBA = replace(SHAPES_LATENT_LAMAMBA, latent_size=32, patch_size=2, in_channels=3)


def _build(config: LaMambaConfig) -> torch.nn.Module:
    net = LaMambaNetwork(config)
    net.initialize_weights()
    return net


def _narrow(config: LaMambaConfig, divisor: int) -> LaMambaConfig:
    dims = tuple(divided_width(d, divisor, h) for d, h in zip(config.dims, config.num_heads, strict=True))
    return replace(config, dims=dims, ssm_dt_rank=None)


def _predict(net: torch.nn.Module, xt: torch.Tensor, k: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
    return [net(xt, k.float(), labels)]


LAMAMBA_FAMILY = TrainFamily(name="lamamba", stem="lamamba_shapes", pixel_config=SHAPES_PIXEL_LAMAMBA,
                             latent_config=SHAPES_LATENT_LAMAMBA, build=_build, narrow=_narrow, predict=_predict,
                             schedule=SHAPES_SCHEDULE, class_marker="y_embedder")


def train_lamamba_shapes(out_dir: str | Path, settings: DiffusionTrainSettings | None = None,
                         resume: str | None = None, log: Callable[[str], None] = print) -> Path:
    """Train (or continue) and write ``lamamba_shapes.safetensors`` (the EMA weights)."""
    return train_diffusion(LAMAMBA_FAMILY, out_dir, settings or DiffusionTrainSettings(), resume, log)
