"""Training the embedded default ``dimr-shapes``: a small pixel-space DiMR on the shapes dataset.

The official objective's structure: a discrete 1000-step VP schedule with DiMR time n = k + 1, and the multi-scale
loss (a coarse stage of resolution H/f predicts its target summed over f×f blocks divided by f, which keeps unit
variance), weighted 1/4 for coarse stages and 1 for the last; 10 % label dropout to the null class (for CFG) and an
EMA of the weights, which is what is saved. Our choices for 32 px pixels on a CPU: the cosine schedule
(squaredcos_cap_v2), the v target (the official models learn ε; at the cosine schedule's end ε-models turn small
errors into large x̂0 errors) and Min-SNR-5 weighting (Hang et al. 2023), both selectable.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ...data.constants import NUM_CLASSES
from ...data.shapes import load_split
from ...engine.weights import read_state_dict, save_state_dict
from ...training import checkpoint_if_due, cosine_warmup, random_batch, set_learning_rate
from . import SHAPES_NOISE
from .config import DiMRConfig, StageConfig
from .model import DIMR_SCHEDULE
from .network import DiMRNetwork, tau_from_time

SHAPES_SCHEDULE = replace(DIMR_SCHEDULE, **SHAPES_NOISE)
SHAPES_DIMR = DiMRConfig(channels=3, num_classes=NUM_CLASSES + 1, stages=(
    StageConfig("transformer", 128, 256, 5, 8, 8, num_heads=4, input_feature_ratio=4),
    StageConfig("convnext", 32, 64, 1, 32, 32, kernel_size=7),
))


@dataclass
class TrainSettings:
    seed: int = 0
    train_size: int = 20_000
    steps: int = 5000
    batch_size: int = 32
    lr: float = 1e-3
    ema: float = 0.999
    cond_drop: float = 0.1
    coarse_weight: float = 0.25
    min_snr_gamma: float | None = 5.0  # Min-SNR-γ loss weighting (Hang et al. 2023); None: unweighted
    init: str | None = None  # start from these weights (fine-tuning) instead of a fresh network
    checkpoint_every: int = 0  # also write the EMA weights every this many steps (0: only at the end)


def multiscale_targets(target: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """The target (ε or v) at each stage's resolution: block sums divided by the block side (unit variance kept)."""
    side = target.shape[-1]
    return [target if s == side else F.avg_pool2d(target, side // s) * (side // s) for s in sizes]


def training_target(x0: torch.Tensor, eps: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor,
                    prediction_type: str) -> torch.Tensor:
    """What the network learns to output at ``x_t = αx0 + σε``: ε, or v = αε − σx0 (Salimans & Ho)."""
    if prediction_type == "eps":
        return eps
    if prediction_type == "v":
        return alpha * eps - sigma * x0
    raise ValueError(f"the DiMR trainer supports eps and v targets, not {prediction_type!r}")


def min_snr_weight(abar: torch.Tensor, gamma: float | None, prediction_type: str) -> torch.Tensor:
    """Per-sample loss weight giving x0-space weight min(SNR, γ) (Min-SNR-γ); ones when ``gamma`` is None."""
    if gamma is None:
        return torch.ones_like(abar)
    snr = abar / (1 - abar)
    return snr.clamp(max=gamma) / (snr + 1 if prediction_type == "v" else snr)


def diffusion_loss(net: DiMRNetwork, x0: torch.Tensor, labels: torch.Tensor, abar: torch.Tensor,
                   gen: torch.Generator, coarse_weight: float, prediction_type: str = "eps",
                   min_snr_gamma: float | None = None) -> torch.Tensor:
    """The multi-scale loss on the ``prediction_type`` target (ε or v = αε − σx0), optionally Min-SNR weighted."""
    b = x0.shape[0]
    k = torch.randint(len(abar), (b,), generator=gen)
    eps = torch.randn(x0.shape, generator=gen)
    a = abar[k].view(b, 1, 1, 1)
    alpha, sigma = a.sqrt(), (1 - a).sqrt()
    xt = alpha * x0 + sigma * eps
    outputs = net(xt, tau_from_time(k + 1), labels)
    targets = multiscale_targets(training_target(x0, eps, alpha, sigma, prediction_type),
                                 [o.shape[-1] for o in outputs])
    weights = [coarse_weight] * (len(outputs) - 1) + [1.0]
    per_sample = min_snr_weight(abar[k], min_snr_gamma, prediction_type)
    return sum(w * ((o - t).square().mean(dim=(1, 2, 3)) * per_sample).mean()  # type: ignore[return-value]
               for w, o, t in zip(weights, outputs, targets))


def train_dimr_shapes(out_dir: str | Path, settings: TrainSettings | None = None,
                      log: Callable[[str], None] = print) -> Path:
    """Train and write ``dimr_shapes.safetensors`` (the EMA weights)."""
    s = settings or TrainSettings()
    torch.manual_seed(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    log(f"rendering {s.train_size} training images…")
    x_train, y_train = load_split("train", s.train_size)
    net = DiMRNetwork(SHAPES_DIMR)
    if s.init:
        net.load_state_dict(read_state_dict(s.init), strict=True)
        log(f"starting from {s.init}")
    ema = copy.deepcopy(net).requires_grad_(False)
    decay = [p for n, p in net.named_parameters() if "nodecay" not in n]
    no_decay = [p for n, p in net.named_parameters() if "nodecay" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.03}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=s.lr, betas=(0.9, 0.99))
    abar = torch.cumprod(1 - SHAPES_SCHEDULE.betas().float(), dim=0)
    t0 = time.perf_counter()
    for step in range(s.steps):
        set_learning_rate(opt, s.lr * cosine_warmup(step, s.steps, 200))
        pick, x = random_batch(x_train, s.batch_size, gen)
        labels = y_train[pick].clone()
        labels[torch.rand(len(labels), generator=gen) < s.cond_drop] = SHAPES_DIMR.null_label
        loss = diffusion_loss(net, x, labels, abar, gen, s.coarse_weight, SHAPES_SCHEDULE.prediction_type,
                              s.min_snr_gamma)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            d = min(s.ema, (1 + step) / (10 + step))
            for pe, p in zip(ema.parameters(), net.parameters()):
                pe.lerp_(p, 1 - d)
        if (step + 1) % 100 == 0:
            log(f"dimr step {step + 1}/{s.steps}: loss {loss.item():.4f} ({time.perf_counter() - t0:.0f} s)")
        checkpoint_if_due(ema.state_dict, Path(out_dir), "dimr_shapes", step + 1, s.checkpoint_every, s.steps)
    meta = {"model": "dimr-shapes", **{k: str(v) for k, v in asdict(s).items()}}
    path = save_state_dict(ema.state_dict(), Path(out_dir) / "dimr_shapes.safetensors", metadata=meta)
    log(f"wrote {path}")
    return path
