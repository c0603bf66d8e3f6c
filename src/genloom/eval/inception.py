"""Standard FID / Inception Score through torchmetrics, with Inception weights the user supplies by path.

Nothing is downloaded: torchmetrics' Inception wrapper is built with ``feature_extractor_weights_path`` set to
the user's file (the ``pt_inception-2015-12-05`` weights that torch-fidelity uses). Install with
``pip install "genloom[fid]"``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..engine.errors import GenloomError, InvalidRequest


def inception_metrics(images: torch.Tensor, reference: torch.Tensor,
                      weights: str | os.PathLike[str] | None) -> dict[str, float]:
    """FID against ``reference`` and IS of ``images``; both uint8 ``(N, 3, H, W)`` tensors."""
    if weights is None:
        raise InvalidRequest(
            "Standard FID/IS need Inception weights, which genloom never downloads: pass "
            "--inception-weights PATH (API: inception_weights=PATH) with the pt_inception-2015-12-05 file."
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise InvalidRequest(f"Inception weights {str(path)!r} not found (--inception-weights).")
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3
        from torchmetrics.image.inception import InceptionScore
    except ImportError as exc:
        raise GenloomError(
            f"Standard FID/IS need torchmetrics with torch-fidelity ({exc}); pip install \"genloom[fid]\"."
        ) from None
    for t, what in ((images, "images"), (reference, "reference")):
        if t.dtype != torch.uint8 or t.ndim != 4 or t.shape[1] != 3:
            raise InvalidRequest(f"{what} must be uint8 (N, 3, H, W) for FID/IS, got {t.dtype} {tuple(t.shape)}.")
    def extractor(layer: str) -> Any:  # the forward returns the first listed layer only
        return NoTrainInceptionV3(name="inception-v3-compat", features_list=[layer],
                                  feature_extractor_weights_path=str(path))

    fid = FrechetInceptionDistance(feature=extractor("2048"), normalize=False)
    fid.update(reference, real=True)
    fid.update(images, real=False)
    score = InceptionScore(feature=extractor("logits_unbiased"), normalize=False)
    score.update(images)
    is_mean, is_std = score.compute()
    return {"fid": float(fid.compute()), "is_mean": float(is_mean), "is_std": float(is_std)}
