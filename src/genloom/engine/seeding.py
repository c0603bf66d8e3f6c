"""Per-image random streams.

By default every image owns a CPU ``torch.Generator`` seeded with its own seed, and all noise is drawn on
the CPU then moved: an image depends only on its seed, not on batch size, its position in the batch, or the
device count. ``mode="batch"`` draws a whole batch from one generator, in the order official research code
does (used to reproduce recorded official runs; then the batch split matters).

Samplers that draw on the device (the next-scale sampler's ``draws="device"``) use a second set of per-image
streams, generators *on that device* seeded from a mix of the image's seed (:func:`device_seed`): an image still
depends only on its seed, the draws never leave the device, and the numbers differ from the CPU streams' (CUDA
generators are Philox, CPU ones Mersenne Twister), so device-drawn images reproduce on the same device type only.
"""

from __future__ import annotations

import numbers
import secrets
from collections.abc import Sequence

import torch

from .errors import InvalidRequest

MAX_SEED = 2**63 - 1
RNG_MODES = ("image", "batch")


def device_seed(seed: int) -> int:
    """The seed of an image's device stream: a fixed odd-multiplier mix of its seed (independent of the host
    stream, which starts from the seed itself)."""
    return (seed * 6364136223846793005 + 1442695040888963407) % (MAX_SEED + 1)


def seeds_for(seed: int | Sequence[int] | None, count: int) -> list[int]:
    """One seed per image: ``seed + i`` from an int, the list itself, or fresh random ones for ``None``."""
    if seed is None:
        seed = secrets.randbelow(2**31)
    if hasattr(seed, "tolist") and not isinstance(seed, numbers.Integral):
        seed = seed.tolist()  # numpy arrays and torch tensors of seeds
    if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, Sequence)) or isinstance(seed, (str, bytes)):
        raise InvalidRequest(f"seed must be a whole number or a list of them, got {seed!r}.")
    if isinstance(seed, numbers.Integral):
        if not 0 <= seed <= MAX_SEED - count:
            raise InvalidRequest(f"seed must be between 0 and {MAX_SEED - count}, got {seed}.")
        return [int(seed) + i for i in range(count)]
    seeds = list(seed)
    if len(seeds) != count:
        raise InvalidRequest(f"Got {len(seeds)} seeds for {count} images; give one seed per image, or a single int.")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or not 0 <= s <= MAX_SEED:
            raise InvalidRequest(f"Every seed must be a whole number between 0 and {MAX_SEED}; got {s!r}.")
    return [int(s) for s in seeds]


class ImageRNG:
    """Noise source for one batch: per-image generators (default) or one generator for the batch."""

    def __init__(self, seeds: Sequence[int], mode: str = "image") -> None:
        if mode not in RNG_MODES:
            raise InvalidRequest(f"rng must be one of {RNG_MODES}, got {mode!r}.")
        self.mode = mode
        self.seeds = list(seeds)
        if mode == "image":
            self.generators = [torch.Generator("cpu").manual_seed(s) for s in self.seeds]
        else:
            self.generators = [torch.Generator("cpu").manual_seed(self.seeds[0])]

    def __len__(self) -> int:
        return len(self.seeds)

    def _device_generators(self, device: torch.device) -> list[torch.Generator]:
        cache = self.__dict__.setdefault("_on_device", {})
        key = str(device)
        if key not in cache:
            seeds = self.seeds if self.mode == "image" else self.seeds[:1]
            cache[key] = [torch.Generator(device).manual_seed(device_seed(s)) for s in seeds]
        return cache[key]

    def device_uniform(self, shape: Sequence[int], device: torch.device) -> torch.Tensor:
        """U[0, 1) numbers ``(B, *shape)`` drawn on ``device`` from the per-image device streams."""
        gens = self._device_generators(torch.device(device))
        if self.mode == "batch":
            return torch.rand((len(self.seeds), *shape), generator=gens[0], device=device)
        return torch.stack([torch.rand(tuple(shape), generator=g, device=device) for g in gens])

    def device_exponential(self, shape: Sequence[int], device: torch.device) -> torch.Tensor:
        """Exp(1) numbers ``(B, *shape)`` drawn on ``device`` from the per-image device streams."""
        gens = self._device_generators(torch.device(device))
        if self.mode == "batch":
            return torch.empty((len(self.seeds), *shape), device=device).exponential_(generator=gens[0])
        return torch.stack([torch.empty(tuple(shape), device=device).exponential_(generator=g) for g in gens])

    def randn(self, shape: Sequence[int], device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Standard normal noise of shape ``(B, *shape)``."""
        if self.mode == "image":
            out = torch.stack([torch.randn(tuple(shape), generator=g) for g in self.generators])
        else:
            out = torch.randn((len(self.seeds), *shape), generator=self.generators[0])
        return out.to(device=device, dtype=dtype)

    def multinomial(self, probs: torch.Tensor) -> torch.Tensor:
        """One draw per row of ``probs`` ``(B, n, V)`` → ``(B, n)``; batch mode draws over ``(B·n, V)`` at once."""
        b, n, v = probs.shape
        if self.mode == "batch":
            flat = torch.multinomial(probs.reshape(-1, v), 1, replacement=True, generator=self.generators[0])
            return flat.view(b, n)
        return torch.stack([torch.multinomial(probs[i], 1, replacement=True, generator=g)[:, 0]
                            for i, g in enumerate(self.generators)])

    def exponential(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Exp(1) noise ``(B, *shape)`` (e.g. for Gumbel perturbations), drawn on the CPU."""
        if self.mode == "batch":
            return torch.empty((len(self.seeds), *shape), dtype=dtype).exponential_(generator=self.generators[0])
        return torch.stack([torch.empty(tuple(shape), dtype=dtype).exponential_(generator=g)
                            for g in self.generators])

    def uniform_labels(self, num_classes: int) -> torch.Tensor:
        """Labels drawn from the stream itself (batch mode: the official VAR order, before any noise)."""
        uniform = torch.ones(num_classes)
        if self.mode == "batch":
            return torch.multinomial(uniform, len(self.seeds), replacement=True, generator=self.generators[0])
        return torch.cat([torch.multinomial(uniform, 1, generator=g) for g in self.generators])

    def subset(self, rows: Sequence[int]) -> ImageRNG:
        """A view over some rows that shares their generators (per-image mode only)."""
        if self.mode != "image":
            raise InvalidRequest("rng='batch' draws for the whole batch; it cannot be split by rows.")
        view = ImageRNG.__new__(ImageRNG)
        view.mode = self.mode
        view.seeds = [self.seeds[i] for i in rows]
        view.generators = [self.generators[i] for i in rows]
        view.__dict__["_on_device"] = {k: [gens[i] for i in rows]
                                       for k, gens in self.__dict__.get("_on_device", {}).items()}
        return view
