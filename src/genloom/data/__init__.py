"""The embedded class-conditional dataset ("shapes"): generated from seeds, nothing to download.

    from genloom.data import ShapesDataset, load_split
    ds = ShapesDataset("train", size=10_000)      # deterministic; tensors in [-1, 1]
"""

from importlib import import_module
from typing import Any

from .constants import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES, SPLITS

_LAZY = {"ShapesDataset", "load_split", "render", "render_one", "to_unit_range"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module("genloom.data.shapes"), name)
    raise AttributeError(f"module 'genloom.data' has no attribute {name!r}")


__all__ = ["CLASS_NAMES", "IMAGE_SIZE", "NUM_CLASSES", "SPLITS", *sorted(_LAZY)]
