"""The reference classifier of the shapes dataset: a small GroupNorm CNN (per-sample, batch-independent)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ...engine import weights
from ...engine.classifier import ImageClassifier
from ...engine.errors import InvalidRequest


@dataclass(frozen=True)
class ShapesCNNConfig:
    num_classes: int = 10
    width: int = 16


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU()]


class ShapesCNN(nn.Module):
    """32×32 → three stages (w, 2w, 4w channels) → global average → ``4w`` features → logits."""

    def __init__(self, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            *_block(3, w), *_block(w, w), nn.MaxPool2d(2),
            *_block(w, 2 * w), *_block(2 * w, 2 * w), nn.MaxPool2d(2),
            *_block(2 * w, 4 * w), *_block(4 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.body(x)
        return self.head(feats), feats


class ShapesClassifier(ImageClassifier):
    def __init__(self, net: ShapesCNN, config: ShapesCNNConfig, class_names: Any, name: str = "shapes-cnn") -> None:
        self.net = net
        self.config = config
        self.name = name
        self.num_classes = config.num_classes
        self.class_names = tuple(class_names)
        self.image_size = 32
        self.feature_dim = 4 * config.width

    def logits_and_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = self.check_images(images)
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise InvalidRequest(
                f"Classifier {self.name!r} reads {self.image_size}×{self.image_size} images; got "
                f"{images.shape[-2]}×{images.shape[-1]}. Resize them, or use a classifier for that size."
            )
        p = next(self.net.parameters())
        with torch.inference_mode():
            logits, feats = self.net(images.to(device=p.device, dtype=p.dtype))
        return logits.float(), feats.float()


def config_from_state_dict(sd: dict[str, torch.Tensor]) -> ShapesCNNConfig:
    num_classes, feat = sd["head.weight"].shape
    return ShapesCNNConfig(num_classes=num_classes, width=feat // 4)


def build(options: Any) -> ShapesClassifier:
    sd = weights.read_state_dict(options.weights.path)
    if "head.weight" not in sd:
        weights.check_state_dict(weights.expected_shapes(ShapesCNN()), sd, "shapes-cnn checkpoint")
    config = config_from_state_dict(sd)
    net = weights.build_and_load(lambda: ShapesCNN(**asdict(config)), sd, device=options.device,
                                 dtype=options.dtype, what="shapes-cnn checkpoint")
    return ShapesClassifier(net, config, options.spec.class_names, options.name)
