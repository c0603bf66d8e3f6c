"""Normalising the inputs of zero-shot editing: a source image and a keep-mask at the model's resolution."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .errors import InvalidRequest
from .images import uint8_to_signed


def as_edit_inputs(image: Any, mask: Any, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """→ image (1, 3, size, size) float in [-1, 1], mask (size, size) float in [0, 1]; typed errors otherwise."""
    img = _image(image)
    if tuple(img.shape[-2:]) != (size, size):
        raise InvalidRequest(
            f"The image to edit is {img.shape[-1]}×{img.shape[-2]}, but the model works at {size}×{size}; "
            f"resize or crop it first."
        )
    keep = _mask(mask)
    if tuple(keep.shape) != (size, size):
        raise InvalidRequest(f"The mask is {tuple(keep.shape)}, but it must be ({size}, {size}) like the image.")
    return img[None], keep


def _image(image: Any) -> torch.Tensor:
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise InvalidRequest(f"An image array must be uint8 (H, W, 3), got {image.dtype} {image.shape}.")
        return uint8_to_signed(image, channels_last=True)
    if isinstance(image, torch.Tensor):
        t = image[0] if image.ndim == 4 and image.shape[0] == 1 else image
        if t.ndim != 3 or t.shape[0] != 3:
            raise InvalidRequest(f"An image tensor must be (3, H, W) in [-1, 1], got {tuple(image.shape)}.")
        return t.float()
    raise InvalidRequest(f"The image to edit must be a PIL image, an array or a tensor, got {type(image).__name__}.")


def _mask(mask: Any) -> torch.Tensor:
    if hasattr(mask, "convert") and hasattr(mask, "size"):
        mask = np.asarray(mask.convert("L")) / 255.0
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32) if not isinstance(mask, torch.Tensor) else mask).float()
    m = m.squeeze()
    if m.ndim != 2:
        raise InvalidRequest(f"The mask must be 2-D (H, W), got shape {tuple(m.shape)}.")
    if not torch.isfinite(m).all() or m.min() < 0 or m.max() > 1:
        raise InvalidRequest("Mask values must lie in [0, 1] (1 = keep the source image).")
    return m
