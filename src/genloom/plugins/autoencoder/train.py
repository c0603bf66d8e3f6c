"""Training ``shapes-ae``: reconstruction MSE in [-1, 1] plus a small KL term, dihedral augmentation.

Plain MSE keeps hue and saturation (the VQVAE of var-shapes lost them to its codebook); the KL term keeps the
latent smooth enough for diffusion. The latent scaling factor (1 / std of the posterior means over training
images, as Stable Diffusion's 0.18215) is measured at the end and stored with the config in the file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ...data.shapes import load_split
from ...engine.autoencoder import encode_means
from ...engine.devices import resolve_device
from ...engine.weights import save_state_dict
from ...training import (
    check_output_folder,
    check_settings,
    cosine_warmup,
    load_training_state,
    random_batch,
    save_training_state,
    set_learning_rate,
)
from .settings import SHAPES_AE_CONFIG, AutoencoderSettings

STEM = "shapes_ae"
#: settings a resumed leg must share with the state it continues
SAME_CONFIGURATION = ("seed", "batch_size", "train_size", "lr", "kl_weight")


def build_autoencoder(config: dict[str, Any] | None = None) -> torch.nn.Module:
    from diffusers import AutoencoderKL

    cfg = dict(config or SHAPES_AE_CONFIG)
    return AutoencoderKL(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})


def autoencoder_loss(ae: torch.nn.Module, x: torch.Tensor, kl_weight: float,
                     gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    posterior = ae.encode(x).latent_dist
    z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen).to(x.device)
    mse = (ae.decode(z).sample - x).square().mean()
    kl = 0.5 * (posterior.mean.square() + posterior.var - 1.0 - posterior.logvar).mean()
    return mse + kl_weight * kl, mse


@torch.no_grad()
def latent_scaling_factor(ae: torch.nn.Module, images: torch.Tensor) -> float:
    means = encode_means(ae, images)
    return float(1.0 / means.std())


def _metadata(s: AutoencoderSettings, scaling: float | None = None) -> dict[str, str]:
    meta = {"model": "shapes-ae", "autoencoder_config": json.dumps(SHAPES_AE_CONFIG),
            "settings": json.dumps(asdict(s))}
    if scaling is not None:
        meta["scaling_factor"] = repr(scaling)
    return meta


def train_shapes_ae(out_dir: str | Path, settings: AutoencoderSettings | None = None, resume: str | None = None,
                    log: Callable[[str], None] = print) -> Path:
    """Train (or continue) and write ``shapes_ae.safetensors``; returns its path (or the state's, if the leg's
    time ran out first)."""
    s = settings or AutoencoderSettings()
    check_settings(s, positive=("steps", "batch_size", "train_size", "lr", "max_minutes"))
    out = check_output_folder(out_dir, (f"{STEM}.safetensors",), resuming=resume is not None)
    device = resolve_device(s.device)
    torch.manual_seed(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    ae = build_autoencoder().train().to(device)
    opt = torch.optim.Adam(ae.parameters(), lr=s.lr, betas=(0.9, 0.99))
    start = 0
    if resume:
        start = load_training_state(resume, {"ae": ae}, opt, gen, asdict(s), SAME_CONFIGURATION)
        log(f"resuming at step {start} from {resume}")
    log(f"rendering {s.train_size} training images…")
    x_train = load_split("train", s.train_size)[0].to(device)
    log(f"training shapes-ae on {device}")
    state_path = out / f"{STEM}_state.safetensors"
    t0 = time.perf_counter()
    step = start
    while step < s.steps:
        set_learning_rate(opt, s.lr * cosine_warmup(step, s.steps, 100))
        _, x = random_batch(x_train, s.batch_size, gen)
        loss, mse = autoencoder_loss(ae, x, s.kl_weight, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            log(f"autoencoder step {step}/{s.steps}: recon mse {mse.item():.5f}, loss {loss.item():.5f} "
                f"({time.perf_counter() - t0:.0f} s)")
        due = s.checkpoint_every and step % s.checkpoint_every == 0
        out_of_time = time.perf_counter() - t0 > 60 * s.max_minutes
        if (due or out_of_time) and step < s.steps:
            save_state_dict(ae.state_dict(), out / f"{STEM}_step{step}.safetensors", metadata=_metadata(s))
            save_training_state(state_path, {"ae": ae}, opt, gen, step, asdict(s))
            if out_of_time:
                log(f"--max-minutes reached at step {step}; continue with --resume {state_path}")
                return state_path
    ae.eval()
    scaling = latent_scaling_factor(ae, x_train[:2000])
    path = save_state_dict(ae.state_dict(), out / f"{STEM}.safetensors", metadata=_metadata(s, scaling))
    save_training_state(state_path, {"ae": ae}, opt, gen, step, asdict(s))  # a later leg may go on
    log(f"wrote {path} (latent scaling factor {scaling:.5f}); --resume {state_path} --steps N continues it")
    return path
