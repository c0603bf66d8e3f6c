"""One call that scores a set of generated images against a reference set."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.constants import SPLITS
from ..engine.errors import InvalidRequest
from ..engine.images import uint8_to_signed
from .metrics import class_accuracy, frechet_distance, precision_recall
from .npz import check_labels, read_npz


@dataclass
class EvalReport:
    """Scores of one sample set; ``fd_mean ± fd_std`` is over ``subsets`` disjoint chunks of the samples."""

    num_samples: int
    classifier: str
    reference: str
    num_reference: int
    fd: float
    fd_mean: float
    fd_std: float
    subsets: int
    precision: float
    recall: float
    k: int
    accuracy: float | None = None
    per_class: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self, class_names: tuple[str, ...] = ()) -> str:
        lines = [
            f"samples            {self.num_samples}  (reference: {self.reference}, {self.num_reference} images; "
            f"classifier: {self.classifier})",
        ]
        if self.accuracy is not None:
            lines.append(f"class accuracy     {self.accuracy:.4f}")
        lines += [
            f"FD (all samples)   {self.fd:.4f}",
            f"FD ({self.subsets} subsets)     {self.fd_mean:.4f} ± {self.fd_std:.4f}",
            f"precision / recall {self.precision:.4f} / {self.recall:.4f}  (k={self.k})",
        ]
        if self.per_class:
            lines.append("per class:  class                count  accuracy")
            for row in self.per_class:
                name = class_names[row["class"]] if row["class"] < len(class_names) else str(row["class"])
                acc = "-" if math.isnan(row["accuracy"]) else f"{row['accuracy']:.4f}"
                lines.append(f"            {row['class']:>2} {name:<16} {row['count']:>6}  {acc}")
        return "\n".join(lines)


def as_model_images(images: Any) -> torch.Tensor:
    """uint8 NHWC (numpy/torch) or float NCHW in [-1, 1] → float NCHW in [-1, 1]."""
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise InvalidRequest(f"Expected uint8 images shaped (N, H, W, 3), got {images.dtype} {images.shape}.")
        return uint8_to_signed(images, channels_last=True)
    if isinstance(images, torch.Tensor):
        if images.dtype == torch.uint8:
            return as_model_images(images.cpu().numpy())
        if images.ndim != 4 or images.shape[1] != 3:
            raise InvalidRequest(f"Expected float images shaped (N, 3, H, W) in [-1, 1], got {tuple(images.shape)}.")
        return images.float()
    raise InvalidRequest(f"Images must be a numpy array or a torch tensor, got {type(images).__name__}.")


def _run(classifier: Any, images: torch.Tensor, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    return _run_batches(classifier, (images[lo:lo + batch_size] for lo in range(0, len(images), batch_size)))


def _run_batches(classifier: Any, batches: Iterable[torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """Predicted classes and penultimate features, batch by batch (only the features are kept)."""
    preds, feats = [], []
    for batch in batches:
        logits, f = classifier.logits_and_features(batch)
        preds.append(logits.argmax(1).cpu())
        feats.append(f.double().cpu())
    return torch.cat(preds).numpy(), torch.cat(feats).numpy()


def reference_uint8(reference: str, count: int) -> np.ndarray:
    """Real images as uint8 NHWC: the first ``count`` of a shapes split, or of an ADM ``.npz``."""
    if reference in SPLITS:
        from ..data.shapes import render

        return render(reference, 0, count)[0].permute(0, 2, 3, 1).numpy()
    return read_npz(reference)[0][:count]


@lru_cache(maxsize=8)
def _reference_features(classifier: Any, reference: str, count: int, batch_size: int) -> np.ndarray:
    return _run(classifier, as_model_images(reference_uint8(reference, count)), batch_size)[1]


def evaluate(
    images: Any,
    labels: Any = None,
    *,
    classifier: Any = "shapes-cnn",
    classifier_weights: str | None = None,
    reference: str | Path = "test",
    num_reference: int = 5000,
    subsets: int = 5,
    k: int = 3,
    batch_size: int = 250,
    engine: Any = None,
    device: Any = "cpu",
) -> EvalReport:
    """Score generated ``images`` (uint8 NHWC or float NCHW in [-1, 1]) with requested ``labels``.

    ``reference`` is a shapes split name (``"test"``, ``"val"``, ``"train"``) or an ADM ``.npz`` of real images.
    ``classifier`` is a registered name or an :class:`ImageClassifier`.
    """
    x = as_model_images(images)
    classifier = _classifier(classifier, classifier_weights, engine, device)
    label_arr = _check_inputs(len(x), labels, subsets, classifier, reference)
    preds, feats = _run(classifier, x, batch_size)
    return _score(preds, feats, label_arr, classifier, str(reference), num_reference, subsets, k, batch_size)


def evaluate_npz(path: str | Path, *, classifier: Any = "shapes-cnn", classifier_weights: str | None = None,
                 reference: str | Path = "test", num_reference: int = 5000, subsets: int = 5, k: int = 3,
                 batch_size: int = 250, engine: Any = None, device: Any = "cpu") -> EvalReport:
    """:func:`evaluate` of an ADM ``.npz`` (with its labels), streamed: only the classifier's features are held,
    never the images (50 000 × 256² images do not fit in memory twice)."""
    from .npz import iter_npz, npz_labels, npz_size

    n, _, _ = npz_size(path)
    classifier = _classifier(classifier, classifier_weights, engine, device)
    labels = npz_labels(path)
    label_arr = _check_inputs(n, labels, subsets, classifier, reference)
    preds, feats = _run_batches(classifier, (as_model_images(chunk) for chunk, _ in iter_npz(path, batch_size)))
    return _score(preds, feats, label_arr, classifier, str(reference), num_reference, subsets, k, batch_size)


def _classifier(classifier: Any, weights: str | None, engine: Any, device: Any) -> Any:
    if isinstance(classifier, str):
        if engine is None:
            from ..engine.engine import default_engine

            engine = default_engine()
        classifier = engine.load_classifier(classifier, weights=weights, device=device)
    return classifier


def _check_inputs(n: int, labels: Any, subsets: Any, classifier: Any, reference: Any) -> np.ndarray | None:
    """Typed errors before any image is classified."""
    if n == 0:
        raise InvalidRequest("The sample set is empty.")
    if isinstance(subsets, bool) or not isinstance(subsets, int) or not 1 <= subsets <= n // 2:
        raise InvalidRequest(f"subsets must be between 1 and {n // 2} (each needs 2+ samples); got {subsets}.")
    label_arr = None
    if labels is not None:
        label_arr = check_labels(np.asarray(labels), n)
        if label_arr.min() < 0 or label_arr.max() >= classifier.num_classes:
            raise InvalidRequest(
                f"Labels must lie in 0..{classifier.num_classes - 1} (classifier {classifier.name!r}); "
                f"got {label_arr.min()}..{label_arr.max()}."
            )
    reference = str(reference)
    if reference not in SPLITS and not Path(reference).is_file():
        raise InvalidRequest(f"Reference {reference!r} is neither a shapes split {sorted(SPLITS)} nor an .npz file.")
    return label_arr


def _score(preds: np.ndarray, feats: np.ndarray, label_arr: np.ndarray | None, classifier: Any, reference: str,
           num_reference: int, subsets: int, k: int, batch_size: int) -> EvalReport:
    n = len(feats)
    ref = _reference_features(classifier, reference, num_reference, batch_size)
    fd = frechet_distance(feats, ref)
    chunks = np.array_split(np.arange(n), subsets)
    fds = [frechet_distance(feats[c], ref) for c in chunks] if subsets > 1 else [fd]
    precision, recall = precision_recall(ref, feats, k=k)
    accuracy, per_class = (None, None)
    if label_arr is not None:
        accuracy, per_class = class_accuracy(preds, label_arr, classifier.num_classes)
    return EvalReport(
        num_samples=n, classifier=classifier.name, reference=reference, num_reference=len(ref), fd=fd,
        fd_mean=float(np.mean(fds)), fd_std=float(np.std(fds)), subsets=subsets, precision=precision,
        recall=recall, k=k, accuracy=accuracy, per_class=per_class,
    )
