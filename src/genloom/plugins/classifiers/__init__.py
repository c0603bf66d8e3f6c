"""Built-in classifiers: the reference CNN for the embedded shapes dataset, and an adapter for any
``transformers`` image-classification model saved in a local folder. Also `genloom train classifier`."""

from __future__ import annotations

from typing import Any

from ...engine.hookspecs import hookimpl
from ...engine.specs import ClassifierSpec, CommandSpec

GENLOOM_PLUGIN_API = "1.0"
SHAPES_ASSET = "asset:shapes_classifier.safetensors"


def _shapes(options: Any) -> Any:
    from .shapes_cnn import build

    return build(options)


def _transformers(options: Any) -> Any:
    from .hf_adapter import build

    return build(options)


@hookimpl
def register_classifiers(register) -> None:  # type: ignore[no-untyped-def]
    from ...data.constants import CLASS_NAMES, IMAGE_SIZE

    register(ClassifierSpec(
        name="shapes-cnn", factory=_shapes, num_classes=len(CLASS_NAMES), image_size=IMAGE_SIZE,
        class_names=CLASS_NAMES, default_weights=SHAPES_ASSET,
        description="reference CNN for the embedded shapes dataset (trained in this repo)"))
    register(ClassifierSpec(
        name="transformers", factory=_transformers,
        description="any transformers AutoModelForImageClassification saved in a local folder (weights=FOLDER)"))


@hookimpl
def register_commands(register) -> None:  # type: ignore[no-untyped-def]
    from .cli import train_classifier

    register(CommandSpec(name="classifier", command=train_classifier, group="train",
                         description="train the shapes reference classifier"))
