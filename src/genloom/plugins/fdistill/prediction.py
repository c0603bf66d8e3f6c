"""Data predictions of a diffusion model through its public protocol, shared by the trainer and the student."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch

from ...engine.parameterisation import to_x0
from ...samplers.diffusion import alpha_sigma


def x0_prediction(model: Any, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None,
                  features: bool = False, abar: torch.Tensor | None = None) -> Any:
    """x̂0 of ``model`` at integer timesteps ``t`` (and its feature maps when ``features``)."""
    schedule = model.noise_schedule
    alpha, sigma = alpha_sigma(schedule, t, abar)
    info = SimpleNamespace(prediction_type=schedule.prediction_type, alpha=alpha.to(x_t.device),
                           sigma=sigma.to(x_t.device))
    if features:
        pred, feats = model.denoise_features(x_t, t.float(), labels)
    else:
        pred, feats = model.denoise(x_t, t.float(), labels), None
    x0 = to_x0(pred[:, :x_t.shape[1]], x_t, info)
    return (x0, feats) if features else x0


def noised(model: Any, x: torch.Tensor, t: torch.Tensor, eps: torch.Tensor,
           abar: torch.Tensor | None = None) -> torch.Tensor:
    """``α_t·x + σ_t·ε`` on ``model``'s schedule."""
    alpha, sigma = alpha_sigma(model.noise_schedule, t, abar)
    shape = (-1,) + (1,) * (x.dim() - 1)
    return alpha.to(x.device, x.dtype).reshape(shape) * x + sigma.to(x.device, x.dtype).reshape(shape) * eps


def one_step(model: Any, z: torch.Tensor, labels: torch.Tensor | None, t_top: int,
             abar: torch.Tensor | None = None) -> torch.Tensor:
    """The one-step generator ``G(z) = x̂0(σ_T·z, T, c)`` (spec §4.9), in the model's input space."""
    t = torch.full((len(z),), t_top, device=z.device, dtype=torch.long)
    return x0_prediction(model, noised(model, torch.zeros_like(z), t, z, abar), t, labels, abar=abar)
