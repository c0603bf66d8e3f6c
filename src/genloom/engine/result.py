"""What a generation returns, and how it is written to disk."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import InvalidRequest
from .images import signed_to_unit, unit_to_pil


@dataclass
class GenerationResult:
    """Images plus everything needed to trust and reproduce them.

    ``images`` is a list of PIL images (``output_type="pil"``), a float tensor ``(N, 3, H, W)`` in [0, 1]
    (``"pt"``) or a float array ``(N, H, W, 3)`` in [0, 1] (``"np"``).
    """

    images: Any
    seeds: list[int]
    labels: list[int] | None
    nfe: list[int]
    timings: dict[str, float]
    manifest: dict[str, Any]
    telemetry: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.seeds)

    def save(self, folder: str | Path, prefix: str = "", overwrite: bool = False) -> list[Path]:
        """Write one PNG per image and ``manifest.json``; returns the image paths. The folder must be new or
        empty unless ``overwrite`` (which removes the earlier run's recorded files first)."""
        from .outputs import prepare_output_folder

        shape = tuple(getattr(self.images, "shape", ()))
        is_latent = isinstance(self.images, torch.Tensor) and (len(shape) != 4 or shape[1] != 3)
        if is_latent or not (isinstance(self.images, list) or len(shape) == 4):
            raise InvalidRequest("Only images can be saved as PNGs; this result holds latents (output_type="
                                 "'latent'). Decode them, or save the tensor with safetensors.")
        out = prepare_output_folder(folder, overwrite)
        paths = []
        for i, image in enumerate(unit_to_pil(self.images)):
            label = f"_c{self.labels[i]}" if self.labels is not None else ""
            path = out / f"{prefix}{i:04d}_s{self.seeds[i]}{label}.png"
            image.save(path)
            paths.append(path)
        manifest = dict(self.manifest, nfe=self.nfe, timings=self.timings, files=[p.name for p in paths])
        (out / f"{prefix}manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        return paths


def convert_images(images: torch.Tensor, output_type: str) -> Any:
    """``(N, 3, H, W)`` in [-1, 1] → the requested output type, values in [0, 1]."""
    unit = signed_to_unit(images)
    if output_type == "pt":
        return unit
    if output_type == "np":
        return unit.permute(0, 2, 3, 1).numpy()
    return unit_to_pil(unit)
