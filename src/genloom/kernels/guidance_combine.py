"""Guidance combine — the guided prediction from the conditional one and R references with per-sample strengths,
``(1 + Σ s_r)·cond − Σ s_r·ref_r`` (= cond + Σ s_r·(cond − ref_r)), optionally rescaled toward the conditional
prediction's per-sample std (Lin et al. 2023: ``φ·out·std(cond)/std(out) + (1 − φ)·out``). With one reference the
reference arithmetic is CFG's ``(1 + s)·cond − s·ref`` in the official VAR operation order, bit for bit; the Triton
kernel fuses it into one pass (plus one for the rescale) in float32."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..engine.errors import InvalidRequest


def check_inputs(cond: torch.Tensor, refs: Sequence[torch.Tensor], scales: torch.Tensor) -> None:
    """Typed errors for references of another shape and strengths that are not ``(R, B)``."""
    if not refs:
        raise InvalidRequest("guidance_combine needs at least one reference prediction.")
    for i, ref in enumerate(refs):
        if ref.shape != cond.shape:
            raise InvalidRequest(f"guidance_combine: reference {i} has shape {tuple(ref.shape)}, the conditional "
                                 f"prediction {tuple(cond.shape)}; every branch must cover the same rows.")
    if scales.shape != (len(refs), cond.shape[0]):
        raise InvalidRequest(f"guidance_combine: scales must be (references, batch) = ({len(refs)}, "
                             f"{cond.shape[0]}), got {tuple(scales.shape)}.")


def guidance_combine(cond: torch.Tensor, refs: Sequence[torch.Tensor], scales: torch.Tensor,
                     rescale: float = 0.0) -> torch.Tensor:
    """Reference. ``scales`` ``(R, B)``: strength of each reference per sample (0: unused for that sample). When
    every sample shares a reference's strength, the strengths are Python numbers, exactly as CFG always computed
    (so the recorded official runs stay bit for bit); per-sample strengths are the prediction's dtype."""
    check_inputs(cond, refs, scales)
    if cond.shape[0] == 0:  # no rows to guide (e.g. every sample switched to conditional-only steps)
        return cond.clone()
    if bool((scales == scales[:, :1]).all()):
        strengths = scales[:, 0].tolist()
        out = (1 + sum(strengths)) * cond
        for s, ref in zip(strengths, refs, strict=True):
            out = out - s * ref
    else:
        view = (-1,) + (1,) * (cond.dim() - 1)
        per_sample = scales.to(device=cond.device, dtype=cond.dtype)
        out = (1 + per_sample.sum(0)).reshape(view) * cond
        for s, ref in zip(per_sample, refs, strict=True):
            out = out - s.reshape(view) * ref
    if rescale > 0:
        dims = tuple(range(1, cond.dim()))
        ratio = cond.std(dim=dims, keepdim=True) / out.std(dim=dims, keepdim=True)
        out = rescale * (out * ratio) + (1 - rescale) * out
    return out
