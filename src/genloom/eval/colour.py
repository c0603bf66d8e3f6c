"""Colour statistics of image sets: does a model (or an autoencoder) keep the hues and saturation of the data?

Images are float tensors in [-1, 1], (N, 3, H, W). Saturation and hue are HSV's, saturation on a 0–100 scale;
the hue histogram has one bin per hue range for saturated pixels (S ≥ 0.25, V ≥ 0.2, where hue is meaningful)
and a last bin for all other pixels, so a model that greys colours out moves mass into that bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..engine.images import signed_to_unit

HUE_BINS = 12


def _hsv(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rgb = signed_to_unit(images)
    r, g, b = rgb.unbind(1)
    value, _ = rgb.max(1)
    chroma = value - rgb.min(1).values
    saturation = torch.where(value > 0, chroma / value.clamp_min(1e-8), torch.zeros_like(value))
    safe = chroma.clamp_min(1e-8)
    hue = torch.where(value == r, ((g - b) / safe) % 6,
                      torch.where(value == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6
    return hue, saturation, value


def hue_histogram(images: torch.Tensor, bins: int = HUE_BINS) -> torch.Tensor:
    """Fractions of pixels per hue bin (saturated pixels), then the fraction of unsaturated pixels; sums to 1."""
    hue, saturation, value = _hsv(images)
    keep = (saturation >= 0.25) & (value >= 0.2)
    index = torch.where(keep, (hue * bins).long().clamp(0, bins - 1), torch.full_like(hue, bins, dtype=torch.long))
    counts = torch.bincount(index.flatten(), minlength=bins + 1).float()
    return counts / counts.sum()


@dataclass
class ColourReport:
    mean_saturation: float  # 0–100
    reference_saturation: float
    hue_tv: float  # total-variation distance of the hue histograms, 0 (same) … 1 (disjoint)

    def line(self) -> str:
        return (f"mean saturation {self.mean_saturation:.1f} (reference {self.reference_saturation:.1f}), "
                f"hue-histogram TV distance {self.hue_tv:.3f}")


def colour_report(images: torch.Tensor, reference: torch.Tensor) -> ColourReport:
    """Saturation and hue distribution of ``images`` against ``reference`` (both in [-1, 1])."""
    tv = 0.5 * float((hue_histogram(images) - hue_histogram(reference)).abs().sum())
    return ColourReport(100 * float(_hsv(images)[1].mean()), 100 * float(_hsv(reference)[1].mean()), tv)
