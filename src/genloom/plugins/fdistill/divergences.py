"""The f-divergences of f-distill and their gradient weights h(r) = r²·f''(r), one table (spec §4.3).

``r`` is the density ratio teacher / student, ``D_f(p‖q) = E_q f(p/q)``. Constant factors of h do not matter (the
weights are normalised to mean 1 per batch); the table keeps the exact r²·f'' so each row is checkable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...engine.errors import InvalidRequest

Fn = Callable[[Any], Any]  # tensor → tensor, written with tensor methods so that this module imports no torch


@dataclass(frozen=True)
class Divergence:
    name: str
    aliases: tuple[str, ...]
    f: Fn  # the generator f(r), for checks and documentation
    h: Fn  # r²·f''(r): the per-sample weight of the score difference
    character: str


DIVERGENCES: dict[str, Divergence] = {d.name: d for d in (
    Divergence("reverse-kl", ("rkl",), lambda r: -r.log(), lambda r: r.new_ones(r.shape),
               "mode-seeking; h ≡ 1 is the DMD / VSD update"),
    Divergence("softened-reverse-kl", ("srkl", "sf"), lambda r: (r + 1) * ((r + 1) / (2 * r)).log(),
               lambda r: 1 / (1 + r), "mode-seeking, bounded"),
    Divergence("js", ("jensen-shannon",), lambda r: r * r.log() - (1 + r) * ((1 + r) / 2).log(),
               lambda r: r / (1 + r), "less mode-seeking, bounded, low variance (the paper's best)"),
    Divergence("squared-hellinger", ("hellinger", "sh"), lambda r: (r.sqrt() - 1) ** 2,
               lambda r: 0.5 * r.sqrt(), "mode-covering, moderate variance"),
    Divergence("forward-kl", ("fkl", "kl"), lambda r: r * r.log(), lambda r: r,
               "mode-covering, unbounded, high variance"),
    Divergence("jeffreys", ("jf",), lambda r: (r - 1) * r.log(), lambda r: r + 1, "forward + reverse KL"),
)}
_BY_ALIAS = {alias: d for d in DIVERGENCES.values() for alias in (d.name, *d.aliases)}
#: every accepted spelling (names first), for option choices and error messages
DIVERGENCE_NAMES = tuple(DIVERGENCES) + tuple(a for d in DIVERGENCES.values() for a in d.aliases)


def divergence(name: str) -> Divergence:
    """The divergence called ``name`` (or one of its short names); a typed error listing them otherwise."""
    try:
        return _BY_ALIAS[name.lower()]
    except KeyError:
        known = ", ".join(f"{d.name} ({'/'.join(d.aliases)})" for d in DIVERGENCES.values())
        raise InvalidRequest(f"Unknown f-divergence {name!r}; use one of: {known}.") from None
