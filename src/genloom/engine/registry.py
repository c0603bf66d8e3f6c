"""Name → spec mappings, one per kind of contribution."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from .errors import ModelNotFound, NotRegistered, PluginError, suggest

S = TypeVar("S")


class Registry(Mapping[str, S], Generic[S]):
    """A read-only mapping for users; plugins add to it through the plugin host only.

    Looking up an unknown name raises :class:`ModelNotFound` with the closest names, so a typo in
    ``load("var-d61")`` is answered with a suggestion rather than a bare KeyError.
    """

    def __init__(self, kind: str, singular: str | None = None) -> None:
        self.kind = kind
        self.singular = singular or kind.rstrip("s")
        self._error = ModelNotFound if kind == "models" else NotRegistered
        self._items: dict[str, S] = {}

    def __getitem__(self, name: str) -> S:
        try:
            return self._items[name]
        except KeyError:
            known = sorted(self._items)
            listing = ", ".join(known) if known else "none are registered"
            raise self._error(
                f"Unknown {self.singular} {name!r}."
                f"{suggest(name, known)} Known {self.kind}: {listing}. "
                f"Install the plugin that provides it, or run `genloom plugins` to see which failed to load."
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._items)})"

    def _add(self, name: str, spec: S) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"A {self.kind} entry needs a non-empty string name, got {name!r}.")
        if name in self._items:
            owner = getattr(self._items[name], "plugin", "?")
            raise PluginError(
                f"{self.kind} name {name!r} is already registered by plugin {owner!r}; "
                f"rename it in the plugin that registers it second."
            )
        self._items[name] = spec

    def _remove(self, name: str) -> None:
        self._items.pop(name, None)
