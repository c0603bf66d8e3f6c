"""ADM-style sample batches: ``arr_0`` uint8 ``(N, H, W, 3)`` images, optional ``arr_1`` int labels.

This is the format the guided-diffusion evaluation suite reads, and the one VAR and DiMR report with.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def _open_member(zf: zipfile.ZipFile, name: str) -> tuple[Any, tuple[int, ...], np.dtype]:
    """An open stream on ``name`` inside an .npz, positioned after its header; (stream, shape, dtype)."""
    f = zf.open(name)
    version = np.lib.format.read_magic(f)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(f)
    if fortran:
        raise InvalidRequest(f"{name} is stored in Fortran order; write it C-ordered (np.savez does).")
    return f, shape, dtype


def npz_size(path: str | os.PathLike[str]) -> tuple[int, tuple[int, ...], bool]:
    """(number of images, image shape HWC, has labels) of an ADM .npz, reading only its headers."""
    if not Path(path).is_file():
        raise InvalidRequest(f"Sample file {str(path)!r} not found.")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if "arr_0.npy" not in names:
                raise InvalidRequest(f"{Path(path).name} has no 'arr_0' array; not an ADM sample batch.")
            f, shape, dtype = _open_member(zf, "arr_0.npy")
            f.close()
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InvalidRequest(f"{Path(path).name} is not a readable .npz file ({type(exc).__name__}: {exc}); it "
                             f"may be truncated — write it again.") from None
    if len(shape) != 4 or shape[-1] != 3 or dtype != np.uint8 or shape[0] == 0:
        raise InvalidRequest(f"{Path(path).name}: expected non-empty uint8 images shaped (N, H, W, 3), got "
                             f"{dtype} {shape}.")
    return shape[0], tuple(shape[1:]), "arr_1.npy" in names


def npz_labels(path: str | os.PathLike[str]) -> np.ndarray | None:
    """The labels (``arr_1``) of an ADM .npz without reading its images; None when it has none."""
    n, _, has_labels = npz_size(path)
    if not has_labels:
        return None
    with zipfile.ZipFile(path) as zf:
        f, shape, dtype = _open_member(zf, "arr_1.npy")
        return check_labels(np.frombuffer(f.read(), dtype=dtype).reshape(shape), n)


def iter_npz(path: str | os.PathLike[str], batch: int = 1000) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """(images, labels) chunks of at most ``batch`` images, streamed: 50 000 × 256² images never sit in memory."""
    n, hwc, _ = npz_size(path)
    labels = npz_labels(path)
    with zipfile.ZipFile(path) as zf:
        f, _, _ = _open_member(zf, "arr_0.npy")
        per_image = int(np.prod(hwc))
        for lo in range(0, n, batch):
            k = min(batch, n - lo)
            chunk = np.frombuffer(f.read(k * per_image), dtype=np.uint8)
            if chunk.size != k * per_image:
                raise InvalidRequest(f"{Path(path).name} ends early (image {lo + chunk.size // per_image} of {n}); "
                                     f"it is truncated — write it again.")
            yield chunk.reshape(k, *hwc), (labels[lo:lo + k] if labels is not None else None)


class NpzWriter:
    """Writes an ADM .npz chunk by chunk (size known up front) to a temporary file, renamed into place on
    :meth:`close` — a crash or a full disk never leaves a partial file under the final name."""

    def __init__(self, path: str | os.PathLike[str], count: int, image_shape: tuple[int, ...],
                 with_labels: bool) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.count, self.written, self.labels = count, 0, [] if with_labels else None
        self._zip = zipfile.ZipFile(self.tmp, "w", zipfile.ZIP_STORED, allowZip64=True)
        self._member = self._zip.open("arr_0.npy", "w", force_zip64=True)
        np.lib.format.write_array_header_1_0(
            self._member, {"descr": "|u1", "fortran_order": False, "shape": (count, *image_shape)})

    def write(self, images: np.ndarray, labels: np.ndarray | None = None) -> None:
        check_images(images, "images to write")
        if self.written + len(images) > self.count:
            raise InvalidRequest(f"{self.path.name}: more images than the {self.count} declared.")
        self._member.write(np.ascontiguousarray(images).tobytes())
        self.written += len(images)
        if self.labels is not None:
            self.labels.append(check_labels(np.asarray(labels), len(images)))

    def close(self) -> Path:
        self._member.close()
        if self.written != self.count:
            self.abort()
            raise InvalidRequest(f"{self.path.name}: {self.written} images written of the {self.count} declared.")
        if self.labels is not None:
            with self._zip.open("arr_1.npy", "w") as member:
                np.lib.format.write_array(member, np.concatenate(self.labels))
        self._zip.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._zip.close()
        except (OSError, ValueError):
            pass
        self.tmp.unlink(missing_ok=True)
