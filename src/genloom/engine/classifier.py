"""What a classifier plugin provides: logits and penultimate features for images in [-1, 1]."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .errors import InvalidRequest


class ImageClassifier:
    """Base class of classifiers used by guidance (GFCG) and by metrics.

    Inputs are ``(B, 3, H, W)`` float images in [-1, 1], the convention of every genloom generator; each
    classifier resizes and normalises internally to what its network expects.
    """

    name: str = ""
    num_classes: int = 0
    class_names: Sequence[str] = ()
    image_size: int = 0
    feature_dim: int = 0

    def logits_and_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits_and_features(images)[0]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits_and_features(images)[1]

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits(images).argmax(dim=1)

    def check_images(self, images: torch.Tensor) -> torch.Tensor:
        """Typed errors for what no classifier can read; returns float images."""
        if not isinstance(images, torch.Tensor):
            raise InvalidRequest(f"Classifier {self.name!r} takes a (B, 3, H, W) tensor, got {type(images).__name__}.")
        if images.ndim != 4 or images.shape[1] != 3:
            raise InvalidRequest(
                f"Classifier {self.name!r} takes RGB images shaped (B, 3, H, W); got {tuple(images.shape)}."
            )
        if images.shape[0] == 0:
            raise InvalidRequest(f"Classifier {self.name!r} got an empty batch.")
        return images.float()
