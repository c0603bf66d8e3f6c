"""Training the embedded ``dimr-shapes``: a small DiMR on the shapes dataset, in pixels or (the shipped recipe) in
the latent space of the embedded autoencoder ``shapes-ae``, through the shared diffusion trainer
(:mod:`genloom.diffusion_training`). DiMR's own parts: the multi-scale outputs (its official loss), the time
τ from n = k + 1, the class token's embeddings and the decay-free time-dependent parameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from ...data.constants import NUM_CLASSES
from ...diffusion_settings import SHAPES_NOISE, DiffusionTrainSettings
from ...diffusion_training import TrainFamily, train_diffusion
from ...training import divided_width
from .config import DiMRConfig, StageConfig
from .model import DIMR_SCHEDULE
from .network import DiMRNetwork, tau_from_time

SHAPES_SCHEDULE = replace(DIMR_SCHEDULE, **SHAPES_NOISE)
SHAPES_DIMR = DiMRConfig(channels=3, num_classes=NUM_CLASSES + 1, stages=(
    StageConfig("transformer", 128, 256, 5, 8, 8, num_heads=4, input_feature_ratio=4),
    StageConfig("convnext", 32, 64, 1, 32, 32, kernel_size=7),
))
#: on the 8×8×4 latents of shapes-ae: a 4×4 Transformer stage (where the outline is decided), then 8×8
SHAPES_LATENT_DIMR = DiMRConfig(channels=4, num_classes=NUM_CLASSES + 1, stages=(
    StageConfig("transformer", 192, 384, 5, 4, 4, num_heads=4, input_feature_ratio=2),
    StageConfig("transformer", 128, 256, 5, 8, 8, num_heads=4),
))


def _narrow(config: DiMRConfig, divisor: int) -> DiMRConfig:
    stages = tuple(replace(st, dim=divided_width(st.dim, divisor, max(st.num_heads, 1)),
                           hidden_dim=divided_width(st.hidden_dim, divisor)) for st in config.stages)
    return replace(config, stages=stages)


def _predict(net: torch.nn.Module, xt: torch.Tensor, k: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
    return net(xt, tau_from_time(k + 1), labels)


DIMR_FAMILY = TrainFamily(name="dimr", stem="dimr_shapes", pixel_config=SHAPES_DIMR,
                          latent_config=SHAPES_LATENT_DIMR, build=DiMRNetwork, narrow=_narrow, predict=_predict,
                          schedule=SHAPES_SCHEDULE, class_marker="class_embeds", no_decay_marker="nodecay")


def train_dimr_shapes(out_dir: str | Path, settings: DiffusionTrainSettings | None = None,
                      resume: str | None = None, log: Callable[[str], None] = print) -> Path:
    """Train (or continue) and write ``dimr_shapes.safetensors`` (the EMA weights)."""
    return train_diffusion(DIMR_FAMILY, out_dir, settings or DiffusionTrainSettings(), resume, log)
