"""ADM-style sample batches: ``arr_0`` uint8 ``(N, H, W, 3)`` images, optional ``arr_1`` int labels.

This is the format the guided-diffusion evaluation suite reads, and the one VAR and DiMR report with.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ..engine.errors import InvalidRequest


def write_npz(path: str | os.PathLike[str], images: np.ndarray, labels: np.ndarray | None = None) -> Path:
    """Write images (uint8 NHWC) and labels; checks the layout first."""
    images = np.asarray(images)
    check_images(images, "images to write")
    arrays = {"arr_0": images}
    if labels is not None:
        arrays["arr_1"] = check_labels(np.asarray(labels), len(images))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    return out


def read_npz(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an ADM sample batch → (uint8 NHWC images, labels or None), with typed errors for bad files."""
    p = Path(path)
    if not p.is_file():
        raise InvalidRequest(f"Sample file {str(p)!r} not found.")
    try:
        with np.load(p, allow_pickle=False) as data:
            if "arr_0" not in data.files:
                raise InvalidRequest(f"{p.name} has no 'arr_0' array (found {data.files}); not an ADM sample batch.")
            images = data["arr_0"]
            labels = data["arr_1"] if "arr_1" in data.files else None
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:  # truncated or not a zip at all
        raise InvalidRequest(f"{p.name} is not a readable .npz file ({type(exc).__name__}: {exc}); it may be "
                             f"truncated — write it again.") from None
    check_images(images, p.name)
    if labels is not None:
        labels = check_labels(labels, len(images))
    return images, labels


def check_images(images: np.ndarray, what: str) -> None:
    if images.ndim != 4 or images.shape[-1] != 3:
        raise InvalidRequest(f"{what}: expected uint8 images shaped (N, H, W, 3), got shape {images.shape}.")
    if images.dtype != np.uint8:
        raise InvalidRequest(f"{what}: expected uint8 pixels (0..255), got {images.dtype}.")
    if len(images) == 0:
        raise InvalidRequest(f"{what}: the sample set is empty.")


def check_labels(labels: np.ndarray, n: int) -> np.ndarray:
    if labels.ndim != 1 or len(labels) != n:
        raise InvalidRequest(f"Labels must be a 1-D array with one label per image ({n}); got shape {labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InvalidRequest(f"Labels must be integers, got {labels.dtype}.")
    return labels.astype(np.int64)
