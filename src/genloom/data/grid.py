"""Image grids for previews and docs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..engine.images import signed_to_uint8


def save_grid(images: torch.Tensor, path: str | os.PathLike[str], columns: int, zoom: int = 1,
              gap: int = 2) -> Path:
    """uint8 ``(N, 3, H, W)`` (or float in [-1, 1]) → one PNG grid, ``columns`` wide, nearest-neighbour zoom."""
    from PIL import Image

    if images.dtype != torch.uint8:
        images = signed_to_uint8(images)
    n, _, h, w = images.shape
    rows = (n + columns - 1) // columns
    hz, wz = h * zoom, w * zoom
    canvas = np.full((rows * (hz + gap) + gap, columns * (wz + gap) + gap, 3), 255, dtype=np.uint8)
    arr = images.permute(0, 2, 3, 1).numpy().repeat(zoom, axis=1).repeat(zoom, axis=2)
    for i in range(n):
        r, c = divmod(i, columns)
        y, x = gap + r * (hz + gap), gap + c * (wz + gap)
        canvas[y:y + hz, x:x + wz] = arr[i]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(out)
    return out
