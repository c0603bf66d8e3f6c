"""The embedded class-conditional dataset ("shapes"): generated from seeds, nothing to download.

    from genloom.data import ShapesDataset, load_split
    ds = ShapesDataset("train", size=10_000)      # deterministic; tensors in [-1, 1]
"""

from .._lazy import lazy_getattr
from .constants import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES, SPLITS

_LAZY = {name: "genloom.data.shapes" for name in ("ShapesDataset", "load_split", "render", "render_one",
                                                  "to_unit_range")}
__getattr__ = lazy_getattr("genloom.data", _LAZY)


__all__ = ["CLASS_NAMES", "IMAGE_SIZE", "NUM_CLASSES", "SPLITS", *sorted(_LAZY)]
