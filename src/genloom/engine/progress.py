"""Progress reporting and cancellation, checked between steps by every sampler."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from .errors import GenerationCancelled


class CancelToken:
    """Thread-safe flag a UI or another thread sets; the running sampler stops at its next step."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise GenerationCancelled("Generation cancelled by its cancel token.")


@dataclass(frozen=True)
class ProgressEvent:
    """One step finished. ``preview()``, when given, decodes the current state to images (costly: opt in)."""

    batch: int
    num_batches: int
    step: int
    num_steps: int
    images_done: int
    num_images: int
    preview: Callable[[], object] | None = None

    @property
    def fraction(self) -> float:
        per_batch = 1.0 / max(self.num_batches, 1)
        return min(1.0, per_batch * (self.batch + self.step / max(self.num_steps, 1)))


ProgressCallback = Callable[[ProgressEvent], None]


class RunContext:
    """Handed to a sampler for one batch: report steps, and stop when cancelled."""

    def __init__(
        self,
        *,
        batch: int = 0,
        num_batches: int = 1,
        images_done: int = 0,
        num_images: int = 0,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        self.batch = batch
        self.num_batches = num_batches
        self.images_done = images_done
        self.num_images = num_images
        self.progress = progress
        self.cancel = cancel

    def check(self) -> None:
        """Raise :class:`GenerationCancelled` if the token was set; call before each step."""
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()

    def step_done(self, step: int, num_steps: int, preview: Callable[[], object] | None = None) -> None:
        """Report step ``step`` (1-based) of ``num_steps``, then check for cancellation."""
        if self.progress is not None:
            self.progress(ProgressEvent(self.batch, self.num_batches, step, num_steps,
                                        self.images_done, self.num_images, preview))
        self.check()
