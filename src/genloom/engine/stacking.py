"""Stacks of guidance policies (``guidance="cfg+gfcg"``, ``"adaptive+gfcg"``), built by the engine from the
registered specs of its parts (no plugin is imported): every policy requests its
branches, identical requests are merged so no row is evaluated twice (the same null or label rows of the main
network are one branch; a request for the conditional rows is the conditional branch itself), and the guided
prediction adds each policy's correction: D̃ = D_c + Σ_p (D̃_p − D_c). Options of a stacked policy are named
``<policy>.<option>`` (the first policy's also plain); its strength is ``<policy>.scale`` (the first policy's is
``guidance_scale``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from .errors import InvalidRequest
from .guidance import BranchOutputs, BranchRequest, StepInfo
from .options import Option
from .specs import GuidanceSpec

SEPARATOR = "+"


def stack_spec(specs: list[GuidanceSpec]) -> GuidanceSpec:
    """One spec for a stack: options prefixed by their policy, paradigms common to all, context if any needs it."""
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InvalidRequest(f"Guidance stack {SEPARATOR.join(names)!r} names a policy twice.")
    options: list[Option] = list(specs[0].options)
    for i, spec in enumerate(specs):
        options += [replace(o, name=f"{spec.name}.{o.name}") for o in spec.options]
        if i:
            options.append(Option(f"{spec.name}.scale", "float", None, f"the strength of {spec.name!r} in the stack"))
    paradigms = frozenset.intersection(*(s.paradigms for s in specs))
    name = SEPARATOR.join(names)

    def factory(scale: float | None = None, context: Any = None, **opts: Any) -> Stack:
        return Stack.create(specs, scale, opts, context)

    return GuidanceSpec(name=name, factory=factory, paradigms=paradigms,
                        requires=frozenset().union(*(s.requires for s in specs)), options=tuple(options),
                        context=any(s.context for s in specs), description=f"stack of {', '.join(names)}",
                        plugin=",".join(sorted({s.plugin for s in specs})))


def part_options(names: list[str], i: int, scale: float | None,
                 opts: Mapping[str, Any]) -> tuple[float | None, dict[str, Any]]:
    """Policy ``names[i]``'s strength and own options in a stack's (or a single policy's) options: the first
    policy's are plain or prefixed and its strength is ``scale``; another's are prefixed, its strength
    ``<policy>.scale`` (None when not given)."""
    prefix = f"{names[i]}."
    own = {k[len(prefix):]: v for k, v in opts.items() if k.startswith(prefix)}
    if i == 0:
        return scale, {**{k: v for k, v in opts.items() if "." not in k}, **own}
    return own.pop("scale", None), own


@dataclass
class StackState:
    states: list[Any]
    mapping: dict[tuple[int, str], str] = field(default_factory=dict)  # (policy, its branch) → evaluated branch
    own_rows: dict[tuple[int, str], torch.Tensor] = field(default_factory=dict)  # the rows that policy asked for
    merged: dict[tuple[Any, ...], BranchRequest] = field(default_factory=dict)


@dataclass(frozen=True)
class Stack:
    policies: tuple[Any, ...]
    name: str
    space: str = "affine"

    @classmethod
    def create(cls, specs: list[GuidanceSpec], scale: float | None, opts: dict[str, Any], context: Any) -> Stack:
        policies = []
        names = [s.name for s in specs]
        for i, spec in enumerate(specs):
            strength, own = part_options(names, i, scale, opts)
            if strength is None and i:
                raise InvalidRequest(f"Give the strength of {spec.name!r} in the stack: {spec.name}.scale=…")
            extra = {"context": context} if spec.context else {}
            policies.append(spec.factory(scale=strength, **own, **extra))
        return cls(policies=tuple(policies), name=SEPARATOR.join(s.name for s in specs))

    @property
    def networks(self) -> dict[str, Any]:
        return {f"{i}:{n}": net for i, p in enumerate(self.policies)
                for n, net in (getattr(p, "networks", {}) or {}).items()}

    def init_state(self, batch_size: int) -> StackState:
        return StackState(states=[p.init_state(batch_size) for p in self.policies])

    @staticmethod
    def _merge(i: int, requests: list[BranchRequest], state: StackState) -> None:
        """Add policy ``i``'s requests to the step's merged branches, remembering where each of its names went."""
        for r in requests:
            network = r.network if r.network == "main" else f"{i}:{r.network}"
            state.own_rows[(i, r.name)] = r.rows
            if network == "main" and not r.null and r.labels is None:
                state.mapping[(i, r.name)] = "cond"  # the conditional rows: always evaluated
                continue
            labels = None if r.labels is None else tuple(r.labels.tolist())
            key = (network, r.null, labels)
            if key in state.merged:  # the same rows' kind again: one evaluation serves both
                kept = state.merged[key]
                state.merged[key] = BranchRequest(kept.name, rows=kept.rows | r.rows.to(kept.rows.device),
                                                  null=kept.null, labels=kept.labels, network=kept.network)
            else:
                state.merged[key] = BranchRequest(f"b{len(state.merged)}", rows=r.rows.clone(), null=r.null,
                                                  labels=r.labels, network=network)
            state.mapping[(i, r.name)] = state.merged[key].name

    def request(self, info: StepInfo, state: StackState) -> list[BranchRequest]:
        state.mapping, state.merged, state.own_rows = {}, {}, {}
        for i, p in enumerate(self.policies):
            self._merge(i, p.request(info, state.states[i]), state)
        return list(state.merged.values())

    def refine(self, info: StepInfo, outputs: BranchOutputs, state: StackState) -> list[BranchRequest]:
        before = set(state.merged)
        for i, p in enumerate(self.policies):
            if hasattr(p, "refine"):
                self._merge(i, p.refine(info, self._view(i, outputs, state), state.states[i]) or [], state)
        return [r for k, r in state.merged.items() if k not in before]

    def _view(self, i: int, outputs: BranchOutputs, state: StackState) -> BranchOutputs:
        """Policy ``i``'s outputs under its own branch names, each masked to the rows it asked for (a merged
        branch may hold more rows, evaluated for another policy)."""
        names = {"cond": "cond", **{mine: theirs for (j, mine), theirs in state.mapping.items() if j == i}}
        present = {mine: theirs for mine, theirs in names.items() if theirs in outputs}
        rows = {m: outputs.rows(t) if m == "cond" else outputs.rows(t) & state.own_rows[(i, m)].to(outputs.rows(t))
                for m, t in present.items()}
        return BranchOutputs({m: outputs[t] for m, t in present.items()}, rows, outputs.x, outputs.info,
                             outputs.labels)

    def combine(self, info: StepInfo, outputs: BranchOutputs, state: StackState) -> torch.Tensor:
        cond = outputs["cond"]
        guided = cond
        for i, p in enumerate(self.policies):
            guided = guided + (p.combine(info, self._view(i, outputs, state), state.states[i]) - cond)
        return guided

    def report(self, state: StackState) -> dict[str, Any]:
        parts = [p.report(s) if hasattr(p, "report") else {"policy": p.name}
                 for p, s in zip(self.policies, state.states)]
        return {"policy": self.name, "parts": parts}


def policy_spec(policies: Any, name: str | None) -> GuidanceSpec | None:
    """The spec of a registered policy or of a stack of registered policies (``"cfg+gfcg"``); None when ``name``
    is empty, ``none`` or names an unknown policy (the request check then says which)."""
    if name in (None, "", "none"):
        return None
    if SEPARATOR not in name:
        return policies.get(name)
    parts = [policies.get(part.strip()) for part in name.split(SEPARATOR)]
    if any(p is None for p in parts):
        return None
    try:
        return stack_spec(parts)  # type: ignore[arg-type]
    except InvalidRequest:
        return None
