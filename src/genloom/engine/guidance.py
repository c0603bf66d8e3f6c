"""The guidance branch protocol: what a policy and a sampler say to each other at every step.

A policy is an immutable config; its per-run state lives in an object it creates with ``init_state``. Before each
network evaluation the sampler calls ``request`` and the policy names the extra branches it needs (the conditional
branch is always evaluated), each with a per-sample row mask. The sampler packs every requested row into one
forward, scatters the outputs back into :class:`BranchOutputs` and calls ``combine``, which returns the guided
prediction in the model's own parameterisation. The sampler, not the policy, runs the network and counts NFE.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import torch

from .errors import InvalidRequest

SPACES = ("affine", "eps", "x0", "logits")


@dataclass(frozen=True)
class StepInfo:
    """Where the sampler is. ``time`` is the noise level as a fraction of the training horizon (1 = pure noise),
    in the model's own convention; ``sigma``/``alpha`` are per sample (``x_t = alpha·x0 + sigma·eps``), None for
    next-scale models; ``prediction_type`` is eps | v | x0 | flow | logits."""

    step: int
    num_steps: int
    batch_size: int
    time: float
    prediction_type: str
    sigma: torch.Tensor | None = None
    alpha: torch.Tensor | None = None
    stage: str = "predictor"
    cached: bool = False  # next-scale: a branch dropped once cannot come back (its KV cache is gone)
    sampler: str = ""  # the sampling loop's registered name (a calibrated policy checks it)
    preview: Any = None  # next-scale: () → the images decoded from the scales so far (a classifier's input)

    def at_scale(self, k: int) -> StepInfo:
        """This next-scale run's predictor at scale ``k``: what a policy asks when it decides whether a branch is
        still needed at a later scale (a dropped branch's KV cache cannot come back)."""
        return replace(self, step=k, time=next_scale_time(k, self.num_steps), stage="predictor")


def next_scale_time(k: int, num_scales: int) -> float:
    """A next-scale model's ``time`` at scale ``k``: 1 at the first (coarsest) scale, 0 at the last."""
    return 1 - k / (num_scales - 1) if num_scales > 1 else 0.0


@dataclass(frozen=True)
class BranchRequest:
    """Evaluate a network for ``rows`` (bool, (B,)) with the null label (``null``) or with ``labels``.
    ``network``: ``"main"`` (the loaded model) or the name of one of the policy's own ``networks`` (e.g. the
    weaker guide model of autoguidance); every branch of one network is packed into that network's one forward."""

    name: str
    rows: torch.Tensor
    null: bool = False
    labels: torch.Tensor | None = None
    network: str = "main"

    def __post_init__(self) -> None:
        if self.name == "cond":
            raise InvalidRequest("Branch name 'cond' is reserved: the conditional branch is always evaluated.")
        if self.rows.dtype is not torch.bool or self.rows.dim() != 1:
            raise InvalidRequest(f"BranchRequest {self.name!r}: rows must be a 1-D bool mask, got {self.rows.dtype}.")
        if self.null and self.labels is not None:
            raise InvalidRequest(f"BranchRequest {self.name!r}: give null=True or labels=, not both.")


class BranchOutputs:
    """Per-branch outputs ``(B, ...)``; rows a branch did not evaluate are NaN, so using them cannot go unnoticed."""

    def __init__(self, outputs: Mapping[str, torch.Tensor], rows: Mapping[str, torch.Tensor], x: torch.Tensor,
                 info: StepInfo, labels: torch.Tensor | None = None) -> None:
        self._outputs, self._rows, self.x, self.info = dict(outputs), dict(rows), x, info
        self.labels = labels  # the batch's requested labels (the conditional rows')

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._outputs[name]

    def __contains__(self, name: str) -> bool:
        return name in self._outputs

    def rows(self, name: str) -> torch.Tensor:
        return self._rows[name]

    def merged(self, other: BranchOutputs) -> BranchOutputs:
        """These outputs and those of a second evaluation of the same step."""
        return BranchOutputs({**self._outputs, **other._outputs}, {**self._rows, **other._rows}, self.x, self.info,
                             self.labels)

    def x0(self, name: str) -> torch.Tensor:
        from .parameterisation import to_x0

        return to_x0(self[name], self.x, self.info)

    def eps(self, name: str) -> torch.Tensor:
        from .parameterisation import to_eps

        return to_eps(self[name], self.x, self.info)


@dataclass(frozen=True)
class GuidanceContext:
    """What a policy whose spec says ``context=True`` receives at construction: the loaded model; ``load``,
    which loads another checkpoint of the same model with the same family options (cached per pipeline); and
    ``classifier``, which builds a registered classifier on the model's device (cached per pipeline)."""

    model: Any
    load: Any  # (weights) -> GenerativeModel
    classifier: Any = None  # (name, weights=None) -> ImageClassifier


class GuidancePolicy(Protocol):
    """What a ``GuidanceSpec`` factory returns. A policy that evaluates other networks lists them in a
    ``networks`` mapping (name → model), which its branches name. Optional methods: ``refine(info, outputs,
    state)`` → more branches, evaluated in a second packed forward after the first one's outputs are seen (a
    policy that must read this step's conditional prediction first, like same-step GFCG); ``report(state)`` →
    a dict recorded in the result's telemetry under ``"guidance"``."""

    name: str
    space: str

    def init_state(self, batch_size: int) -> Any: ...

    def request(self, info: StepInfo, state: Any) -> list[BranchRequest]: ...

    def combine(self, info: StepInfo, outputs: BranchOutputs, state: Any) -> torch.Tensor: ...
