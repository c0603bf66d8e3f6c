"""Any ``transformers`` image-classification model saved in a local folder, as a genloom classifier.

Loaded with ``local_files_only=True`` (never a download). Images in [-1, 1] are mapped to the model's own
preprocessing (size, mean, std from its image-processor config when present). Penultimate features are the
input of the final classification Linear layer, captured with a forward hook, so any head layout works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...engine.classifier import ImageClassifier
from ...engine.errors import WeightsError


class TransformersClassifier(ImageClassifier):
    def __init__(self, model: nn.Module, name: str, size: int, mean: list[float], std: list[float]) -> None:
        self.model = model
        self.name = name
        config = model.config
        self.num_classes = int(config.num_labels)
        self.class_names = tuple(str(config.id2label.get(i, i)) for i in range(self.num_classes))
        self.image_size = size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.head = _classification_head(model, self.num_classes)
        self.feature_dim = self.head.in_features

    def logits_and_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = self.check_images(images)
        x = (images + 1) / 2
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = nn.functional.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                                          align_corners=False, antialias=True)
        x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        p = next(self.model.parameters())
        captured: list[torch.Tensor] = []
        hook = self.head.register_forward_hook(lambda mod, args, out: captured.append(args[0]))
        try:
            with torch.inference_mode():
                logits = self.model(pixel_values=x.to(device=p.device, dtype=p.dtype)).logits
        finally:
            hook.remove()
        feats = captured[-1].flatten(1)
        return logits.float(), feats.float()


def _classification_head(model: nn.Module, num_labels: int) -> nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == num_labels]
    if not linears:
        raise WeightsError(f"No Linear layer with {num_labels} outputs found: not an image-classification model?")
    return linears[-1]


def build(options: Any) -> TransformersClassifier:
    if options.weights is None:
        raise WeightsError(
            "The 'transformers' classifier needs weights= pointing to a local folder saved with "
            "save_pretrained() (config.json + model.safetensors)."
        )
    path = Path(options.weights.path)
    folder = path if path.is_dir() else path.parent
    if not (folder / "config.json").is_file():
        raise WeightsError(f"{folder} has no config.json; save the model with save_pretrained(folder).")
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    try:
        model = AutoModelForImageClassification.from_pretrained(str(folder), local_files_only=True,
                                                                torch_dtype=options.dtype)
    except (OSError, ValueError, KeyError) as exc:
        raise WeightsError(f"transformers could not load an image classifier from {folder}: {exc}") from exc
    model.to(options.device).eval().requires_grad_(False)
    size = _config_size(model.config)
    mean, std = [0.5] * 3, [0.5] * 3
    try:
        proc = AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
        mean, std = list(proc.image_mean), list(proc.image_std)
        size = _processor_size(getattr(proc, "size", None)) or size
    except (OSError, ValueError, AttributeError, TypeError):
        pass  # no preprocessor_config.json: the config's size and [-1, 1] normalisation
    return TransformersClassifier(model, options.name, size, mean, std)


def _config_size(config: Any) -> int:
    size = getattr(config, "image_size", 224)
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def _processor_size(size: Any) -> int | None:
    if isinstance(size, dict):
        return size.get("height") or size.get("shortest_edge")
    return int(size) if isinstance(size, int) else None
