"""Training the embedded default ``dimr-shapes``: a small DiMR on the shapes dataset, in pixels or (the shipped
recipe) in the latent space of the embedded autoencoder ``shapes-ae``.

The official objective's structure: a discrete 1000-step VP schedule with DiMR time n = k + 1, and the multi-scale
loss (a coarse stage of resolution H/f predicts its target summed over f×f blocks divided by f, which keeps unit
variance), weighted 1/4 for coarse stages and 1 for the last; 10 % label dropout to the null class (for CFG) and an
EMA of the weights, which is what is saved. Our choices for a CPU: the cosine schedule (squaredcos_cap_v2) and the
v target; timesteps drawn logit-normal shifted toward high noise, where the class outline is decided (uniform
timesteps and Min-SNR weighting left the label unused, see BENCHMARKS.md); a larger learning rate for the class
embeddings. The label's use is measured while training (:func:`label_gap`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ...data.constants import NUM_CLASSES
from ...data.shapes import load_split
from ...engine import weights
from ...engine.autoencoder import load_autoencoder_file
from ...training import (check_output_folder, check_settings, cosine_warmup, dihedral_augment,
                         load_training_state, random_batch, save_training_state)
from . import SHAPES_NOISE
from .config import DiMRConfig, StageConfig
from .model import DIMR_SCHEDULE
from .network import DiMRNetwork, tau_from_time
from .settings import DiMRTrainSettings

TrainSettings = DiMRTrainSettings
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
STEM = "dimr_shapes"
SAME_CONFIGURATION = ("seed", "batch_size", "train_size", "lr", "class_lr_mult", "ema", "cond_drop",
                      "coarse_weight", "time_shift_mean", "time_shift_std", "min_snr_gamma", "vae")
DIAGNOSTIC_TIMESTEPS = (300, 600, 800, 950)


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


def sample_timesteps(b: int, horizon: int, gen: torch.Generator, shift_mean: float | None,
                     shift_std: float = 1.0) -> torch.Tensor:
    """Uniform integer timesteps, or logit-normal ones: k = ⌊sigmoid(m + s·z)·horizon⌋ (SD3's sampling)."""
    if shift_mean is None:
        return torch.randint(horizon, (b,), generator=gen)
    u = torch.sigmoid(shift_mean + shift_std * torch.randn(b, generator=gen))
    return (u * horizon).long().clamp(0, horizon - 1)


def diffusion_loss(net: DiMRNetwork, x0: torch.Tensor, labels: torch.Tensor, abar: torch.Tensor,
                   gen: torch.Generator, coarse_weight: float, prediction_type: str = "eps",
                   min_snr_gamma: float | None = None, shift_mean: float | None = None,
                   shift_std: float = 1.0) -> torch.Tensor:
    """The multi-scale loss on the ``prediction_type`` target (ε or v = αε − σx0), optionally Min-SNR weighted."""
    b = x0.shape[0]
    k = sample_timesteps(b, len(abar), gen, shift_mean, shift_std)
    eps = torch.randn(x0.shape, generator=gen)
    a = abar[k].view(b, 1, 1, 1)
    alpha, sigma = a.sqrt(), (1 - a).sqrt()
    xt = alpha * x0 + sigma * eps
    outputs = net(xt, tau_from_time(k + 1), labels)
    targets = multiscale_targets(training_target(x0, eps, alpha, sigma, prediction_type),
                                 [o.shape[-1] for o in outputs])
    weights_ = [coarse_weight] * (len(outputs) - 1) + [1.0]
    per_sample = min_snr_weight(abar[k], min_snr_gamma, prediction_type)
    return sum(w * ((o - t).square().mean(dim=(1, 2, 3)) * per_sample).mean()  # type: ignore[return-value]
               for w, o, t in zip(weights_, outputs, targets))


@torch.no_grad()
def label_gap(net: DiMRNetwork, x0: torch.Tensor, labels: torch.Tensor, abar: torch.Tensor, null_label: int,
              timesteps: tuple[int, ...] = DIAGNOSTIC_TIMESTEPS, seed: int = 0) -> dict[int, tuple[float, ...]]:
    """x̂0 mean squared error with the right, the null and a wrong label, per timestep (fixed noise): a network
    that uses its label has right < null ≈ wrong, a gap that widens as it learns."""
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(x0.shape, generator=gen)
    wrong = (labels + 1 + torch.randint(NUM_CLASSES - 1, labels.shape, generator=gen)) % NUM_CLASSES
    out = {}
    for k in timesteps:
        a = abar[k]
        alpha, sigma = a.sqrt(), (1 - a).sqrt()
        xt = alpha * x0 + sigma * eps
        tau = tau_from_time(torch.full((len(x0),), k + 1))
        errors = []
        for lab in (labels, torch.full_like(labels, null_label), wrong):
            v = net(xt, tau, lab)[-1]
            errors.append(float((alpha * xt - sigma * v - x0).square().mean()))
        out[k] = tuple(errors)
    return out


def _encode(vae: torch.nn.Module, scale: float, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([vae.encode(images[i:i + 256]).latent_dist.mean * scale for i in range(0, len(images), 256)])


def _training_data(s: DiMRTrainSettings, gen: torch.Generator,
                   log: Callable[[str], None]) -> tuple[torch.Tensor, torch.Tensor, DiMRConfig, bool]:
    """(inputs, labels, network config, augment in the loop?): pixels, or latents of each image and of a
    dihedral transform of it (latent space is not closed under the image's rotations, so they are encoded)."""
    log(f"rendering {s.train_size} training images…")
    x, y = load_split("train", s.train_size)
    if not s.vae:
        return x, y, SHAPES_DIMR, True
    vae, scale = load_autoencoder_file(s.vae)
    log(f"encoding them (and a dihedral transform of each) with {s.vae} (scale {scale:.4f})…")
    turned = torch.cat([dihedral_augment(x[i:i + 1], gen) for i in range(len(x))])
    latents = torch.cat([_encode(vae, scale, x), _encode(vae, scale, turned)])
    return latents, torch.cat([y, y]), SHAPES_LATENT_DIMR, False


def train_dimr_shapes(out_dir: str | Path, settings: DiMRTrainSettings | None = None, resume: str | None = None,
                      log: Callable[[str], None] = print) -> Path:
    """Train (or continue) and write ``dimr_shapes.safetensors`` (the EMA weights); returns its path, or the
    resumable state's when the leg's time ran out (or the label gap check stopped it)."""
    s = settings or DiMRTrainSettings()
    check_settings(s, positive=("steps", "batch_size", "train_size", "lr", "max_minutes"), fractions=("cond_drop",),
                   files=("vae",))
    out = check_output_folder(out_dir, (f"{STEM}.safetensors",), resuming=resume is not None)
    torch.manual_seed(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    x_train, y_train, config, augment = _training_data(s, gen, log)
    net = DiMRNetwork(config)
    ema = copy.deepcopy(net).requires_grad_(False)
    groups: dict[str, list[torch.nn.Parameter]] = {"decay": [], "no_decay": [], "class": []}
    for n, p in net.named_parameters():
        groups["class" if "class_embeds" in n else "no_decay" if "nodecay" in n else "decay"].append(p)
    opt = torch.optim.AdamW([{"params": groups["decay"], "weight_decay": 0.03, "mult": 1.0},
                             {"params": groups["no_decay"], "weight_decay": 0.0, "mult": 1.0},
                             {"params": groups["class"], "weight_decay": 0.0, "mult": s.class_lr_mult}],
                            lr=s.lr, betas=(0.9, 0.99))
    start = 0
    state_path = out / f"{STEM}_state.safetensors"
    if resume:
        start = load_training_state(resume, {"net": net, "ema": ema}, opt, gen, asdict(s), SAME_CONFIGURATION)
        log(f"resuming at step {start} from {resume}")
    abar = torch.cumprod(1 - SHAPES_SCHEDULE.betas().float(), dim=0)
    probe_x, probe_y = x_train[-256:], y_train[-256:]
    meta = {"model": "dimr-shapes", **{k: str(v) for k, v in asdict(s).items()}}
    t0 = time.perf_counter()
    step = start
    while step < s.steps:
        lr = s.lr * cosine_warmup(step, s.steps, 200)
        for group in opt.param_groups:
            group["lr"] = lr * group["mult"]
        if augment:
            pick, x = random_batch(x_train, s.batch_size, gen)
        else:
            pick = torch.randint(len(x_train), (s.batch_size,), generator=gen)
            x = x_train[pick]
        labels = y_train[pick].clone()
        labels[torch.rand(len(labels), generator=gen) < s.cond_drop] = config.null_label
        loss = diffusion_loss(net, x, labels, abar, gen, s.coarse_weight, SHAPES_SCHEDULE.prediction_type,
                              s.min_snr_gamma, s.time_shift_mean, s.time_shift_std)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            d = min(s.ema, (1 + step) / (10 + step))
            for pe, p in zip(ema.parameters(), net.parameters()):
                pe.lerp_(p, 1 - d)
        step += 1
        if step % 100 == 0:
            log(f"dimr step {step}/{s.steps}: loss {loss.item():.4f} ({time.perf_counter() - t0:.0f} s)")
        stop = None
        if s.diagnose_every and step % s.diagnose_every == 0 or step == s.stop_without_gap_at:
            gaps = label_gap(ema, probe_x, probe_y, abar, config.null_label)
            log("  x̂0 error right / null / wrong label: " + "; ".join(
                f"k={k}: {r:.4f} / {n:.4f} / {w:.4f}" for k, (r, n, w) in gaps.items()))
            if step == s.stop_without_gap_at and all(r > 0.99 * w for r, _, w in gaps.values()):
                stop = f"no label gap at step {step}: the network ignores its label; change the recipe"
        if stop is None and time.perf_counter() - t0 > 60 * s.max_minutes and step < s.steps:
            stop = f"--max-minutes reached at step {step}; continue with --resume {state_path}"
        due = s.checkpoint_every and step % s.checkpoint_every == 0
        if (due or stop) and step < s.steps:
            weights.save_state_dict(ema.state_dict(), out / f"{STEM}_step{step}.safetensors", metadata=meta)
            save_training_state(state_path, {"net": net, "ema": ema}, opt, gen, step, asdict(s))
        if stop:
            log(stop)
            return state_path
    path = weights.save_state_dict(ema.state_dict(), out / f"{STEM}.safetensors", metadata=meta)
    log(f"wrote {path}")
    return path
