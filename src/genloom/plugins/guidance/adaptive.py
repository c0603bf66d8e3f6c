"""Adaptive Guidance (Castillo et al. 2023): CFG per sample until its conditional and unconditional predictions
agree — cosine similarity above γ̄ — then conditional-only for the rest of the run, and the unconditional rows are
no longer evaluated. The switch is one-way (the similarity rises monotonically along a trajectory) and decided per
sample, so a sample switches at the same step alone or in any batch. The similarity is measured on ε by default
(the paper's ε-models; cosine is not invariant to the shared x_t offset of x0/v predictions); ``x0`` and
``native`` are named alternatives. On next-scale models (VAR) it is the mean over tokens of the cosine between
the centred log-softmax vectors (raw logits carry an arbitrary per-token shift), and a switched row's KV caches
are compacted away, so it stops costing transformer rows. ``x0-centred`` removes each channel's spatial mean from
x̂0 first: on a zero-terminal-SNR (v, cosine) model ε ≈ x_t and both x̂0 are near the data mean at high noise, so
ε and raw x̂0 agree to > 0.99 from the first step, while the centred x̂0 (the outline CFG decides) starts near
0.95 and rises to 1 as the sample settles (BENCHMARKS.md). With a two-stage sampler (Heun) a switch decided at the
predictor takes effect at the next step's predictor, never between a predictor and its corrector."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from ...engine.errors import InvalidRequest
from ...engine.guidance import BranchOutputs, BranchRequest, StepInfo
from .cfg import contrast
from .declarations import AG_SIMILARITY, finite_scale


@dataclass
class AGState:
    switched: torch.Tensor  # rows that no longer pay for the unconditional pass
    pending: torch.Tensor   # decided at this step's predictor, applied from the next step on
    switch_step: torch.Tensor  # the step whose similarity crossed γ̄ (−1: never)
    similarity: list[torch.Tensor] = field(default_factory=list)  # per predictor evaluation, NaN for switched rows
    space: str | None = None  # where it was measured: the option's space, or "tokens" on next-scale logits


@dataclass(frozen=True)
class AdaptiveGuidance:
    scale: float
    threshold: float = 0.99
    similarity: str = "eps"
    name: str = "adaptive"
    space: str = "affine"

    @classmethod
    def create(cls, scale: float | None = None, threshold: float = 0.99, similarity: str = "eps") -> AdaptiveGuidance:
        scale = finite_scale("adaptive", scale)
        if not isinstance(threshold, (int, float)) or not -1.0 <= threshold <= 1.0:
            raise InvalidRequest(f"Adaptive guidance threshold γ̄ is a cosine similarity in [-1, 1], got "
                                 f"{threshold!r} (1 = plain CFG, -1 = CFG at the first step only).")
        if similarity not in AG_SIMILARITY:
            raise InvalidRequest(f"similarity must be one of {AG_SIMILARITY}, got {similarity!r}.")
        return cls(scale=float(scale), threshold=float(threshold), similarity=similarity)

    def init_state(self, batch_size: int) -> AGState:
        off = torch.zeros(batch_size, dtype=torch.bool)
        return AGState(switched=off.clone(), pending=off.clone(), switch_step=torch.full((batch_size,), -1))

    def request(self, info: StepInfo, state: AGState) -> list[BranchRequest]:
        if info.stage == "predictor":
            state.switched |= state.pending
            state.pending[:] = False
        rows = ~state.switched
        if self.scale == 1.0 or not bool(rows.any()):
            return []
        return [BranchRequest("uncond", rows=rows.clone(), null=True)]

    def combine(self, info: StepInfo, outputs: BranchOutputs, state: AGState) -> torch.Tensor:
        cond = outputs["cond"]
        if "uncond" not in outputs:
            return cond
        rows = outputs.rows("uncond").cpu()
        s = self.scale - 1.0
        guided = cond.clone()
        guided[rows] = contrast(cond[rows], outputs["uncond"][rows], s)
        if info.stage == "predictor":
            gamma = torch.full((info.batch_size,), math.nan, dtype=torch.float64)
            gamma[rows] = self._cosine(outputs, rows).cpu()
            state.space = "tokens" if outputs.info.prediction_type == "logits" else self.similarity
            newly = rows & (gamma > self.threshold)
            state.pending |= newly
            state.switch_step[newly] = info.step
            state.similarity.append(gamma)
        return guided

    def report(self, state: AGState) -> dict[str, Any]:
        """Each sample's switch step (−1: never) and the similarity at every predictor evaluation (a list per
        step, one value per sample, None once a sample has switched): what γ̄ is calibrated against."""
        trace = [[None if math.isnan(v) else round(v, 8) for v in gamma.tolist()] for gamma in state.similarity]
        return {"policy": "adaptive", "similarity_space": state.space, "switch_step": state.switch_step.tolist(),
                "similarity": trace}

    def _cosine(self, outputs: BranchOutputs, rows: torch.Tensor) -> torch.Tensor:
        if outputs.info.prediction_type == "logits":  # next-scale: per token, shift-invariant
            a = torch.log_softmax(outputs["cond"][rows].double(), dim=-1)
            b = torch.log_softmax(outputs["uncond"][rows].double(), dim=-1)
            a, b = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
            per_token = torch.nn.functional.cosine_similarity(a, b, dim=-1)  # (B, tokens…)
            return per_token.flatten(1).mean(dim=1) if per_token.dim() > 1 else per_token
        if self.similarity == "eps":
            a, b = outputs.eps("cond")[rows], outputs.eps("uncond")[rows]
        elif self.similarity in ("x0", "x0-centred"):
            a, b = outputs.x0("cond")[rows], outputs.x0("uncond")[rows]
        else:
            a, b = outputs["cond"][rows], outputs["uncond"][rows]
        return sample_cosine(a, b, centred=self.similarity == "x0-centred")


def sample_cosine(a: torch.Tensor, b: torch.Tensor, centred: bool = False) -> torch.Tensor:
    """Per-sample cosine over all non-batch elements (float64); ``centred`` first removes each channel's spatial
    mean (dims 2…), so a shared per-channel offset — the background, the data mean — does not count."""
    if centred and a.dim() > 2:
        spatial = tuple(range(2, a.dim()))
        a, b = a - a.mean(dim=spatial, keepdim=True), b - b.mean(dim=spatial, keepdim=True)
    return torch.nn.functional.cosine_similarity(a.flatten(1).double(), b.flatten(1).double(), dim=1)
