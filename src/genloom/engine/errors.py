"""One hierarchy of typed errors.

Every message says what was wrong and what to do about it, so a user of the API, the CLI or the UI
can fix the problem without reading our code.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GenloomError(Exception):
    """Base class of every error genloom raises on purpose."""


class NotRegistered(GenloomError, KeyError):
    """A name (model, sampler, policy, classifier...) that no loaded plugin provides."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelNotFound(NotRegistered):
    """A model name that no loaded plugin provides."""


class InvalidRequest(GenloomError, ValueError):
    """A generation request (labels, counts, scales, sampler...) that cannot be honoured."""


class WeightsError(GenloomError):
    """A checkpoint that is missing, corrupted, unsafe or does not match the network."""


class WeightsMismatch(WeightsError):
    """A checkpoint whose keys or shapes differ from the network's."""

    def __init__(
        self,
        message: str,
        missing: list[str] | None = None,
        unexpected: list[str] | None = None,
        shape_mismatches: list[tuple[str, tuple[int, ...], tuple[int, ...]]] | None = None,
    ) -> None:
        super().__init__(message)
        self.missing = missing or []
        self.unexpected = unexpected or []
        self.shape_mismatches = shape_mismatches or []


class UnsafeCheckpoint(WeightsError):
    """A legacy pickle checkpoint that needs arbitrary code to load; it is refused, never executed."""


class PluginError(GenloomError):
    """A plugin that failed to import, raised in a hook, or broke the plugin contract."""


class GenerationCancelled(GenloomError):
    """The run was cancelled through its cancel token; raised between steps."""


class DeviceError(GenloomError):
    """A device or dtype that is unknown or not available on this machine."""


def suggest(name: str, candidates: Iterable[str]) -> str:
    """A ' Did you mean ...?' hint for near misses (empty when nothing is close)."""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.5)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"
