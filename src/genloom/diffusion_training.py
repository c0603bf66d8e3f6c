"""The in-repo trainer of the embedded diffusion models (DiMR and LaMamba on the shapes dataset): one loop, the
family supplies its network and how it is called (:class:`TrainFamily`).

Choices for a CPU, measured in BENCHMARKS.md: the cosine schedule and the v target; timesteps drawn logit-normal
shifted toward high noise, where the class outline is decided (uniform timesteps and Min-SNR weighting left the
label unused); a larger learning rate for the class embeddings; 10 % label dropout (CFG); an EMA of the weights,
which is what is saved. Families with several output resolutions (DiMR) get the multi-scale loss: a stage of
resolution H/f predicts its target summed over f×f blocks divided by f (unit variance kept), weighted
``coarse_weight``. The label's use is measured while training (:func:`label_gap`), and legs are resumable.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .data.constants import NUM_CLASSES
from .data.shapes import load_split
from .diffusion_settings import DiffusionTrainSettings
from .engine import weights
from .engine.autoencoder import encode_means, load_autoencoder_file
from .engine.devices import resolve_device
from .samplers.diffusion import NoiseSchedule
from .training import (
    check_output_folder,
    check_settings,
    cosine_warmup,
    dihedral_augment,
    load_initial_weights,
    load_training_state,
    random_batch,
    save_training_state,
    set_learning_rate,
    update_ema,
    wrong_labels,
)

SAME_CONFIGURATION = ("seed", "batch_size", "train_size", "lr", "class_lr_mult", "ema", "cond_drop",
                      "coarse_weight", "time_shift_mean", "time_shift_std", "min_snr_gamma", "vae", "init",
                      "width_divisor")
#: the values states written before a setting existed ran with
SINCE = {"width_divisor": 1}
DIAGNOSTIC_TIMESTEPS = (300, 600, 800, 950)


@dataclass(frozen=True)
class TrainFamily:
    """What the loop needs from a family: its configs (pixels / shapes-ae latents), a network builder, the call
    ``predict(net, x_t, k, labels)`` → outputs (the last at full resolution) at integer timesteps ``k``,
    ``narrow(config, n)`` → the config with its widths divided by ``n`` (``--width-divisor``), the
    parameter-name markers of class embeddings and of decay-free parameters, the file stem and model name."""

    name: str
    stem: str
    pixel_config: Any
    latent_config: Any
    build: Callable[[Any], torch.nn.Module]
    narrow: Callable[[Any, int], Any]
    predict: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], list[torch.Tensor]]
    schedule: NoiseSchedule
    null_label: int = NUM_CLASSES
    class_marker: str = "class"
    no_decay_marker: str | None = None


def training_target(x0: torch.Tensor, eps: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor,
                    prediction_type: str) -> torch.Tensor:
    """What the network learns to output at ``x_t = αx0 + σε``: ε, or v = αε − σx0 (Salimans & Ho)."""
    if prediction_type == "eps":
        return eps
    if prediction_type == "v":
        return alpha * eps - sigma * x0
    raise ValueError(f"the diffusion trainer supports eps and v targets, not {prediction_type!r}")


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


def multiscale_targets(target: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """The target (ε or v) at each output's resolution: block sums divided by the block side."""
    side = target.shape[-1]
    return [target if s == side else F.avg_pool2d(target, side // s) * (side // s) for s in sizes]


def diffusion_loss(family: TrainFamily, net: torch.nn.Module, x0: torch.Tensor, labels: torch.Tensor,
                   abar: torch.Tensor, gen: torch.Generator, s: DiffusionTrainSettings) -> torch.Tensor:
    """The (multi-scale) loss on the schedule's target, optionally Min-SNR weighted."""
    kind = family.schedule.prediction_type
    b, dev = x0.shape[0], x0.device
    k = sample_timesteps(b, len(abar), gen, s.time_shift_mean, s.time_shift_std).to(dev)
    eps = torch.randn(x0.shape, generator=gen).to(dev)  # drawn on the CPU: the same run on any device
    a = abar[k].view(b, 1, 1, 1)
    alpha, sigma = a.sqrt(), (1 - a).sqrt()
    outputs = family.predict(net, alpha * x0 + sigma * eps, k, labels)
    targets = multiscale_targets(training_target(x0, eps, alpha, sigma, kind), [o.shape[-1] for o in outputs])
    weights_ = [s.coarse_weight] * (len(outputs) - 1) + [1.0]
    per_sample = min_snr_weight(abar[k], s.min_snr_gamma, kind)
    return sum(w * ((o - t).square().mean(dim=(1, 2, 3)) * per_sample).mean()  # type: ignore[return-value]
               for w, o, t in zip(weights_, outputs, targets))


@torch.no_grad()
def label_gap(family: TrainFamily, net: torch.nn.Module, x0: torch.Tensor, labels: torch.Tensor,
              abar: torch.Tensor, timesteps: tuple[int, ...] = DIAGNOSTIC_TIMESTEPS,
              seed: int = 0) -> dict[int, tuple[float, ...]]:
    """x̂0 mean squared error with the right, the null and a wrong label, per timestep (fixed noise): a network
    that uses its label has right < null ≈ wrong, a gap that widens as it learns."""
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(x0.shape, generator=gen).to(x0.device)
    wrong = wrong_labels(labels, NUM_CLASSES, gen)
    out = {}
    for k in timesteps:
        a = abar[k]
        alpha, sigma = a.sqrt(), (1 - a).sqrt()
        xt = alpha * x0 + sigma * eps
        ks = torch.full((len(x0),), k, device=x0.device)
        errors = []
        for lab in (labels, torch.full_like(labels, family.null_label), wrong):
            pred = family.predict(net, xt, ks, lab)[-1][:, :x0.shape[1]]
            x0_hat = alpha * xt - sigma * pred if family.schedule.prediction_type == "v" else \
                (xt - sigma * pred) / alpha
            errors.append(float((x0_hat - x0).square().mean()))
        out[k] = tuple(errors)
    return out


def build_network(family: TrainFamily, s: DiffusionTrainSettings) -> torch.nn.Module:
    """The family's network for pixels or latents, freshly initialised or loaded from ``s.init`` (checked here,
    before any data is rendered: weights of another configuration are a typed error)."""
    config = family.latent_config if s.vae else family.pixel_config
    net = family.build(family.narrow(config, s.width_divisor) if s.width_divisor != 1 else config)
    if s.init:
        load_initial_weights(net, s.init, f"the {family.name} network of these settings "
                                          f"({'latent' if s.vae else 'pixel'} space)")
    return net


def training_data(family: TrainFamily, s: DiffusionTrainSettings, gen: torch.Generator,
                  log: Callable[[str], None],
                  device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(inputs, labels, augment in the loop?): pixels, or latents of each image and of a dihedral transform of
    it (latent space is not closed under the image's rotations, so they are encoded)."""
    log(f"rendering {s.train_size} training images…")
    x, y = load_split("train", s.train_size)
    if not s.vae:
        return x.to(device), y.to(device), True
    vae, scale = load_autoencoder_file(s.vae, device=device)
    log(f"encoding them (and a dihedral transform of each) with {s.vae} (scale {scale:.4f})…")
    turned = torch.cat([dihedral_augment(x[i:i + 1], gen) for i in range(len(x))])
    with torch.no_grad():
        latents = torch.cat([encode_means(vae, x.to(device), scale), encode_means(vae, turned.to(device), scale)])
    return latents, torch.cat([y, y]).to(device), False


def train_diffusion(family: TrainFamily, out_dir: str | Path, s: DiffusionTrainSettings,
                    resume: str | None = None, log: Callable[[str], None] = print) -> Path:
    """Train (or continue) and write ``<stem>.safetensors`` (the EMA weights); returns its path, or the
    resumable state's when the leg's time ran out (or the label gap check stopped it)."""
    check_settings(s, positive=("steps", "batch_size", "train_size", "lr", "max_minutes", "width_divisor"),
                   fractions=("cond_drop",),
                   files=("vae", "init"))
    out = check_output_folder(out_dir, (f"{family.stem}.safetensors",), resuming=resume is not None)
    device = resolve_device(s.device)
    torch.manual_seed(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    net = build_network(family, s).to(device)
    x_train, y_train, augment = training_data(family, s, gen, log, device)
    ema = copy.deepcopy(net).requires_grad_(False)
    log(f"training {family.name} on {device}" + (f", starting from {s.init}" if s.init else ""))
    groups: dict[str, list[torch.nn.Parameter]] = {"decay": [], "no_decay": [], "class": []}
    for n, p in net.named_parameters():
        kind = "class" if family.class_marker in n else \
            "no_decay" if family.no_decay_marker and family.no_decay_marker in n else "decay"
        groups[kind].append(p)
    opt = torch.optim.AdamW([{"params": groups["decay"], "weight_decay": 0.03, "mult": 1.0},
                             {"params": groups["no_decay"], "weight_decay": 0.0, "mult": 1.0},
                             {"params": groups["class"], "weight_decay": 0.0, "mult": s.class_lr_mult}],
                            lr=s.lr, betas=(0.9, 0.99))
    start = 0
    state_path = out / f"{family.stem}_state.safetensors"
    if resume:
        start = load_training_state(resume, {"net": net, "ema": ema}, opt, gen, asdict(s), SAME_CONFIGURATION,
                                    SINCE)
        log(f"resuming at step {start} from {resume}")
    abar = torch.cumprod(1 - family.schedule.betas().float(), dim=0).to(device)
    probe_x, probe_y = x_train[-256:], y_train[-256:]
    meta = {"model": family.stem.replace("_", "-"), **{k: str(v) for k, v in asdict(s).items()}}
    t0 = time.perf_counter()
    step = start
    while step < s.steps:
        set_learning_rate(opt, s.lr * cosine_warmup(step, s.steps, 200))
        if augment:
            pick, x = random_batch(x_train, s.batch_size, gen)
        else:
            pick = torch.randint(len(x_train), (s.batch_size,), generator=gen)
            x = x_train[pick.to(device)]
        labels = y_train[pick.to(device)].clone()
        labels[(torch.rand(len(labels), generator=gen) < s.cond_drop).to(device)] = family.null_label
        loss = diffusion_loss(family, net, x, labels, abar, gen, s)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        update_ema(ema, net, s.ema, step)
        step += 1
        if step % 100 == 0:
            log(f"{family.name} step {step}/{s.steps}: loss {loss.item():.4f} ({time.perf_counter() - t0:.0f} s)")
        stop = None
        if s.diagnose_every and step % s.diagnose_every == 0 or step == s.stop_without_gap_at:
            gaps = label_gap(family, ema, probe_x, probe_y, abar)
            log("  x̂0 error right / null / wrong label: " + "; ".join(
                f"k={k}: {r:.4f} / {n:.4f} / {w:.4f}" for k, (r, n, w) in gaps.items()))
            if step == s.stop_without_gap_at and all(r > 0.99 * w for r, _, w in gaps.values()):
                stop = f"no label gap at step {step}: the network ignores its label; change the recipe"
        if stop is None and time.perf_counter() - t0 > 60 * s.max_minutes and step < s.steps:
            stop = f"--max-minutes reached at step {step}; continue with --resume {state_path}"
        due = s.checkpoint_every and step % s.checkpoint_every == 0
        if (due or stop) and step < s.steps:
            weights.save_state_dict(ema.state_dict(), out / f"{family.stem}_step{step}.safetensors", metadata=meta)
            save_training_state(state_path, {"net": net, "ema": ema}, opt, gen, step, asdict(s))
        if stop:
            log(stop)
            return state_path
    path = weights.save_state_dict(ema.state_dict(), out / f"{family.stem}.safetensors", metadata=meta)
    save_training_state(state_path, {"net": net, "ema": ema}, opt, gen, step, asdict(s))  # a later leg may go on
    log(f"wrote {path}; --resume {state_path} --steps N continues it")
    return path
