"""Seeded rendering of 32×32 RGB images of ten shape classes.

Each image is a pure function of ``(split, index)``: the class is ``index % 10`` (balanced splits) and a
NumPy generator seeded with ``(split base, index)`` draws colour, size, position, rotation and background.
Shapes are rasterised at 4× and box-filtered down (anti-aliased edges). The classes differ in *shape* only;
everything else varies, so a generator must learn structure and a classifier can still tell them apart.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterator

import numpy as np
import torch

from ..engine.errors import InvalidRequest
from ..engine.images import uint8_to_signed
from .constants import IMAGE_SIZE, MAX_SPLIT_SIZE, NUM_CLASSES, SPLITS

SUPERSAMPLE = 4

_N = IMAGE_SIZE * SUPERSAMPLE
_COORD = (np.arange(_N) + 0.5) / SUPERSAMPLE  # pixel-centre coordinates in output pixels


def _mask(kind: int, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    """Inside-test for shape ``kind`` in its own frame (u, v centred and rotated), radius ``r``."""
    rho = np.hypot(u, v)
    if kind == 0:  # circle
        return rho <= r
    if kind == 1:  # square
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8 * r
    if kind == 2:  # equilateral triangle (three half-planes)
        inside = np.ones_like(u, dtype=bool)
        for k in range(3):
            a = np.pi / 2 + 2 * np.pi * k / 3
            inside &= u * np.cos(a) + v * np.sin(a) <= 0.5 * r
        return inside
    if kind == 3:  # ring
        return (rho <= r) & (rho >= 0.55 * r)
    if kind == 4:  # plus
        w = 0.3 * r
        return ((np.abs(u) <= w) & (np.abs(v) <= r)) | ((np.abs(v) <= w) & (np.abs(u) <= r))
    if kind == 5:  # five-pointed star, boundary linear in angle between tips and notches
        theta = np.arctan2(v, u)
        phase = np.abs(((theta * 5 / (2 * np.pi)) % 1.0) - 0.5) * 2  # 1 at tips, 0 at notches
        return rho <= r * (0.42 + 0.58 * phase)
    if kind == 6:  # crescent
        return (rho <= r) & (np.hypot(u - 0.5 * r, v) > 0.8 * r)
    if kind == 7:  # heart (implicit curve), pointing down in its frame
        x, y = u / (0.85 * r), -v / (0.85 * r) + 0.25
        return (x * x + y * y - 1) ** 3 - x * x * y**3 <= 0
    if kind == 8:  # bar
        return (np.abs(u) <= r) & (np.abs(v) <= 0.28 * r)
    if kind == 9:  # semicircle
        return (rho <= r) & (v >= -0.15 * r)
    raise ValueError(kind)


def _colour(rng: np.random.Generator, lightness: tuple[float, float]) -> np.ndarray:
    h = rng.random()
    s = rng.uniform(0.35, 1.0)
    light = rng.uniform(*lightness)
    return np.array(colorsys.hls_to_rgb(h, light, s))


def _background(rng: np.random.Generator, dark_shape: bool) -> np.ndarray:
    """Solid, gradient or blotchy background, on the opposite side of mid-grey from the shape."""
    light_range = (0.6, 0.92) if dark_shape else (0.08, 0.4)
    c1, c2 = _colour(rng, light_range), _colour(rng, light_range)
    style = rng.integers(3)
    yy, xx = np.meshgrid(np.linspace(0, 1, IMAGE_SIZE), np.linspace(0, 1, IMAGE_SIZE), indexing="ij")
    if style == 0:
        t = np.zeros_like(xx)
    elif style == 1:
        a = rng.uniform(0, 2 * np.pi)
        t = (xx * np.cos(a) + yy * np.sin(a))
        t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    else:
        coarse = rng.random((4, 4))
        t = np.kron(coarse, np.ones((8, 8)))
        t = (t + np.roll(t, 4, 0) + np.roll(t, 4, 1) + np.roll(np.roll(t, 4, 0), 4, 1)) / 4
    bg = c1[None, None, :] * (1 - t[..., None]) + c2[None, None, :] * t[..., None]
    return bg + rng.normal(0, 0.02, bg.shape)


def render_one(label: int, rng: np.random.Generator) -> np.ndarray:
    """One ``(32, 32, 3)`` float image in [0, 1] of class ``label``."""
    dark_shape = bool(rng.random() < 0.5)
    fg = _colour(rng, (0.1, 0.42) if dark_shape else (0.58, 0.9))
    bg = _background(rng, dark_shape)
    r = rng.uniform(6.5, 12.5)
    margin = 0.9 * r
    cx, cy = rng.uniform(margin, IMAGE_SIZE - margin, size=2)
    angle = rng.uniform(0, 2 * np.pi)
    x, y = np.meshgrid(_COORD - cx, _COORD - cy, indexing="xy")
    ca, sa = np.cos(angle), np.sin(angle)
    u, v = ca * x + sa * y, -sa * x + ca * y
    fine = _mask(label, u, v, r).astype(np.float64)
    cover = fine.reshape(IMAGE_SIZE, SUPERSAMPLE, IMAGE_SIZE, SUPERSAMPLE).mean(axis=(1, 3))
    img = bg * (1 - cover[..., None]) + fg[None, None, :] * cover[..., None]
    return np.clip(img, 0.0, 1.0)


def _check(split: str, start: int, count: int) -> None:
    if split not in SPLITS:
        raise InvalidRequest(f"Unknown split {split!r}; use one of {sorted(SPLITS)}.")
    if start < 0 or count < 0 or start + count > MAX_SPLIT_SIZE:
        raise InvalidRequest(f"Indices {start}..{start + count} fall outside a split (0..{MAX_SPLIT_SIZE}).")


def render(split: str, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(count, 3, 32, 32)`` uint8 and labels ``(count,)`` for indices ``start..start+count``."""
    _check(split, start, count)
    images = np.empty((count, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    labels = np.empty(count, dtype=np.int64)
    for i in range(count):
        index = start + i
        label = index % NUM_CLASSES
        rng = np.random.default_rng([SPLITS[split] + index, 0x5EED])
        images[i] = np.round(render_one(label, rng) * 255).astype(np.uint8)
        labels[i] = label
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)


def to_unit_range(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` → float in [-1, 1], the convention of every genloom network."""
    return uint8_to_signed(images_u8)


def load_split(split: str, count: int, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Float images in [-1, 1] and labels, rendered (deterministically) on the spot."""
    images, labels = render(split, start, count)
    return to_unit_range(images), labels


class ShapesDataset(torch.utils.data.Dataset):
    """A split of the shapes dataset as a map-style torch dataset of ``(image in [-1, 1], label)``.

    ``preload=True`` renders everything once (about 0.3 ms per image); otherwise images render on access.
    """

    def __init__(self, split: str = "train", size: int = 10_000, start: int = 0, preload: bool = True) -> None:
        _check(split, start, size)
        self.split, self.size, self.start = split, size, start
        self._cache = render(split, start, size) if preload else None

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if not 0 <= i < self.size:
            raise IndexError(i)
        if self._cache is not None:
            return to_unit_range(self._cache[0][i : i + 1])[0], int(self._cache[1][i])
        images, labels = render(self.split, self.start + i, 1)
        return to_unit_range(images)[0], int(labels[0])

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Sequential batches, in order (for evaluation)."""
        for lo in range(0, self.size, batch_size):
            hi = min(self.size, lo + batch_size)
            if self._cache is not None:
                yield to_unit_range(self._cache[0][lo:hi]), self._cache[1][lo:hi]
            else:
                yield load_split(self.split, hi - lo, self.start + lo)
