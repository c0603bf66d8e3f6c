"""Nearest codebook entry (VQ quantisation): the reference is the official form — distances as
‖z‖² + ‖e‖² − 2·z·e through one ``addmm``, then the first arg-min (ties go to the lower index)."""

from __future__ import annotations

import torch

from ..engine.errors import InvalidRequest


def _check(z: torch.Tensor, codebook: torch.Tensor) -> None:
    if z.dim() != 2 or codebook.dim() != 2 or z.shape[1] != codebook.shape[1]:
        raise InvalidRequest(f"vq_nearest: z must be (N, C) and the codebook (V, C) with the same C; got "
                             f"{tuple(z.shape)} and {tuple(codebook.shape)}.")


def vq_nearest(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(N, C) vectors → (N,) int64 indices of their nearest codes."""
    _check(z, codebook)
    d = z.square().sum(dim=1, keepdim=True) + codebook.square().sum(dim=1)
    return torch.addmm(d, z, codebook.T, alpha=-2, beta=1).argmin(dim=1)
