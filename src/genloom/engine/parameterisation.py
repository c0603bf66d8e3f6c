"""Conversions between a diffusion model's parameterisations at one evaluation (``x_t = α·x0 + σ·ε``).

Every conversion is affine in the prediction with an offset shared by all branches at the same ``x_t``, which is
why affine guidance rules (CFG) give the same result in any space; rules that are not affine (rescale, AG's
similarity, classifier previews) convert first.
"""

from __future__ import annotations

from typing import Any

import torch

PREDICTION_TYPES = ("eps", "v", "x0", "flow")


def _coeffs(info: Any, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
    if info.sigma is None or info.alpha is None:
        raise ValueError(f"conversions need sigma and alpha; {info.prediction_type!r} evaluations carry none")
    shape = (-1,) + (1,) * (ndim - 1)
    return info.alpha.reshape(shape), info.sigma.reshape(shape)


def to_x0(pred: torch.Tensor, x: torch.Tensor, info: Any) -> torch.Tensor:
    """The data prediction x̂0 from ``pred`` in ``info.prediction_type``."""
    kind = info.prediction_type
    if kind == "x0":
        return pred
    alpha, sigma = _coeffs(info, x.dim())
    if kind == "eps":
        return (x - sigma * pred) / alpha
    if kind == "v":
        return alpha * x - sigma * pred
    if kind == "flow":  # alpha = 1 - t, sigma = t
        return x - sigma * pred
    raise ValueError(f"unknown prediction type {kind!r}")


def to_eps(pred: torch.Tensor, x: torch.Tensor, info: Any) -> torch.Tensor:
    """The noise prediction ε̂ from ``pred`` in ``info.prediction_type``."""
    kind = info.prediction_type
    if kind == "eps":
        return pred
    alpha, sigma = _coeffs(info, x.dim())
    if kind == "x0":
        return (x - alpha * pred) / sigma
    if kind == "v":
        return sigma * x + alpha * pred
    if kind == "flow":
        return x + alpha * pred
    raise ValueError(f"unknown prediction type {kind!r}")


def from_x0(x0: torch.Tensor, x: torch.Tensor, info: Any) -> torch.Tensor:
    """Back from a data prediction to ``info.prediction_type`` (inverse of :func:`to_x0`)."""
    kind = info.prediction_type
    if kind == "x0":
        return x0
    alpha, sigma = _coeffs(info, x.dim())
    if kind == "eps":
        return (x - alpha * x0) / sigma
    if kind == "v":
        return (alpha * x - x0) / sigma
    if kind == "flow":
        return (x - x0) / sigma
    raise ValueError(f"unknown prediction type {kind!r}")
