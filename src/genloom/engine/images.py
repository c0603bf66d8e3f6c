"""Image conversions, written once. genloom networks see float ``(N, 3, H, W)`` in [-1, 1] ("signed"); people
and files see uint8 pixels or [0, 1] floats ("unit")."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def signed_to_unit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] → [0, 1] float32 on the CPU, clamped."""
    return ((images.detach().float().cpu() + 1) / 2).clamp(0, 1)


def signed_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float ``(N, 3, H, W)`` → uint8 ``(N, 3, H, W)``, rounded."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def uint8_to_signed(images: torch.Tensor | np.ndarray, channels_last: bool = False) -> torch.Tensor:
    """uint8 pixels ``(N, 3, H, W)`` (or ``(N, H, W, 3)`` with ``channels_last``; numpy or torch; a single
    image without N also works) → float32 ``(N, 3, H, W)`` in [-1, 1]."""
    # a copy of arrays: those of PIL images are read-only
    t = torch.from_numpy(np.array(images)) if isinstance(images, np.ndarray) else images
    if channels_last:
        t = t.permute(*range(t.dim() - 3), -1, -3, -2)
    return t.float().div(127.5).sub(1.0)


def unit_to_pil(images: Any) -> list[Any]:
    """[0, 1] float tensor ``(N, 3, H, W)`` or array ``(N, H, W, 3)`` → PIL images (a list passes through)."""
    from PIL import Image

    if isinstance(images, list):
        return images
    if isinstance(images, torch.Tensor):
        images = images.permute(0, 2, 3, 1).numpy()
    u8 = (np.asarray(images) * 255.0).round().clip(0, 255).astype(np.uint8)
    return [Image.fromarray(img) for img in u8]


def to_pil(images: torch.Tensor) -> list[Any]:
    """[-1, 1] float ``(N, 3, H, W)`` → PIL images (previews, results)."""
    return unit_to_pil(signed_to_unit(images))


def pil_to_uint8(images: list[Any]) -> np.ndarray:
    """PIL images (or uint8 arrays) → one uint8 ``(N, H, W, 3)`` array (ADM sample files)."""
    return np.stack([np.asarray(im.convert("RGB") if hasattr(im, "convert") else im) for im in images]).astype(np.uint8)
