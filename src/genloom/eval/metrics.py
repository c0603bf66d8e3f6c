"""Metrics on feature matrices and classifier predictions; float64, deterministic."""

from __future__ import annotations

import numpy as np
import torch

from ..engine.errors import InvalidRequest


def _stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(feats, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise InvalidRequest(f"Fréchet distance needs at least 2 feature vectors, got shape {f.shape}.")
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """‖μa − μb‖² + tr(Σa + Σb − 2 (Σa Σb)^½), with the trace term from a symmetric eigen-decomposition."""
    mu_a, cov_a = _stats(feats_a)
    mu_b, cov_b = _stats(feats_b)
    a = torch.from_numpy(np.atleast_2d(cov_a))
    b = torch.from_numpy(np.atleast_2d(cov_b))
    evals, evecs = torch.linalg.eigh(a)
    sqrt_a = (evecs * evals.clamp_min(0).sqrt()) @ evecs.T
    middle = sqrt_a @ b @ sqrt_a
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum().item()
    diff = mu_a - mu_b
    # ≥ 0 in exact arithmetic; clamp the ~1e-12 rounding of identical sets
    return max(0.0, float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt))


def _kth_neighbour_radius(feats: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    radii = []
    for lo in range(0, len(feats), chunk):
        d = torch.cdist(feats[lo:lo + chunk], feats)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # +1: the point itself is at distance 0
    return torch.cat(radii)


def _coverage(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, chunk: int = 2048) -> float:
    inside = 0
    for lo in range(0, len(queries), chunk):
        d = torch.cdist(queries[lo:lo + chunk], support)
        inside += int((d <= radii[None, :]).any(dim=1).sum())
    return inside / len(queries)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision/recall (k-NN manifolds): precision = fakes inside the real manifold, recall = reals
    inside the fake manifold."""
    if len(real) <= k or len(fake) <= k:
        raise InvalidRequest(f"Precision/recall with k={k} needs more than {k} real and generated samples.")
    r = torch.from_numpy(np.asarray(real, dtype=np.float64))
    f = torch.from_numpy(np.asarray(fake, dtype=np.float64))
    precision = _coverage(f, r, _kth_neighbour_radius(r, k))
    recall = _coverage(r, f, _kth_neighbour_radius(f, k))
    return precision, recall


def class_accuracy(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[float, list[dict]]:
    """Overall accuracy and a per-class table (count, accuracy) of predictions against requested labels."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    per_class = []
    for c in range(num_classes):
        mask = labels == c
        n = int(mask.sum())
        per_class.append({"class": c, "count": n,
                          "accuracy": float((predictions[mask] == c).mean()) if n else float("nan")})
    return float((predictions == labels).mean()), per_class
