"""LinearAG (Castillo et al. 2023, §2.5 of the spec): in the first half of the run, every other unconditional
evaluation is replaced by an affine combination of past estimates,

    ε̂_u(i) = a_i·ε_c(i) + b_i·ε_c(i−1) + c_i·ε_u(i−1) + d_i,

with ε_u(i−1) itself real or estimated; the first ``k_full`` steps run full CFG (they seed the regression) and the
second half is conditional-only. The coefficients come from ``genloom calibrate linear-ag``: ordinary least
squares per step, pooled over every element of full-CFG trajectories of the same model, sampler, step count and
scale, stored as a small safetensors table with what it was fitted for; a table that does not match the run is
refused. Predictions are combined in the model's own parameterisation (CFG is affine there). The paper's exact
estimator and schedule are not verified ([R]); these are the spec's stated design, each a named choice."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ...engine.errors import InvalidRequest
from ...engine.guidance import BranchOutputs, BranchRequest, GuidanceContext, StepInfo
from .cfg import contrast
from .declarations import finite_scale

FEATURES = ("cond", "cond_prev", "uncond_prev", "bias")


@dataclass(frozen=True)
class LinearAGTable:
    """Per step i: ``coefficients[i]`` (a, b, c, d), ``replace[i]`` (estimate ε_u instead of evaluating it),
    ``guided[i]`` (CFG at all: False in the conditional-only second half), ``r2[i]`` of the fit."""

    coefficients: torch.Tensor
    replace: torch.Tensor
    guided: torch.Tensor
    r2: torch.Tensor
    model: str
    weights_sha256: str
    sampler: str
    steps: int
    scale: float

    def save(self, path: str | Path) -> Path:
        from ...engine.weights import save_state_dict

        meta = {"linear_ag": json.dumps({"model": self.model, "weights_sha256": self.weights_sha256,
                                         "sampler": self.sampler, "steps": self.steps, "scale": self.scale,
                                         "features": FEATURES})}
        return save_state_dict({"coefficients": self.coefficients, "replace": self.replace.to(torch.uint8),
                                "guided": self.guided.to(torch.uint8), "r2": self.r2}, path, metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> LinearAGTable:
        from ...engine.weights import read_metadata, read_state_dict

        meta = read_metadata(path)
        if "linear_ag" not in meta:
            raise InvalidRequest(f"{str(path)!r} is not a LinearAG table (make one with `genloom calibrate "
                                 f"linear-ag`).")
        info = json.loads(meta["linear_ag"])
        sd = read_state_dict(path)
        return cls(coefficients=sd["coefficients"].double(), replace=sd["replace"].bool(), guided=sd["guided"].bool(),
                   r2=sd["r2"], model=info["model"], weights_sha256=info["weights_sha256"], sampler=info["sampler"],
                   steps=int(info["steps"]), scale=float(info["scale"]))


def default_schedule(steps: int, k_full: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(replace, guided): full CFG for the first ``k_full`` steps, then in the first half every other step
    estimated; the second half conditional-only."""
    half = steps // 2
    guided = torch.arange(steps) < max(half, min(k_full, steps))
    replace = torch.zeros(steps, dtype=torch.bool)
    for i in range(k_full, half):
        replace[i] = (i - k_full) % 2 == 0
    return replace, guided


def fit_table(cond: list[torch.Tensor], uncond: list[torch.Tensor], replace: torch.Tensor) -> tuple[torch.Tensor,
                                                                                                      torch.Tensor]:
    """Least squares per step over full-CFG trajectories: (coefficients (N, 4), R² (N,)). Steps that are not
    replaced keep zeros (their ε_u is evaluated)."""
    n = len(cond)
    coefficients, r2 = torch.zeros(n, len(FEATURES), dtype=torch.float64), torch.full((n,), math.nan)
    for i in range(1, n):
        if not replace[i]:
            continue
        y = uncond[i].double().flatten()
        x = torch.stack([cond[i].double().flatten(), cond[i - 1].double().flatten(),
                         uncond[i - 1].double().flatten(), torch.ones_like(y)], dim=1)
        sol = torch.linalg.lstsq(x, y[:, None]).solution[:, 0]
        coefficients[i] = sol
        residual = y - x @ sol
        r2[i] = float(1 - residual.square().sum() / (y - y.mean()).square().sum().clamp_min(1e-30))
    return coefficients, r2


@dataclass
class LinearAGState:
    cond: torch.Tensor | None = None  # ε_c of the previous step
    uncond: torch.Tensor | None = None  # ε_u of the previous step (real or estimated)
    estimated: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class LinearAG:
    scale: float
    table: LinearAGTable
    name: str = "linear-ag"
    space: str = "affine"

    @classmethod
    def create(cls, scale: float | None = None, table: Any = None, context: GuidanceContext | None = None) -> LinearAG:
        scale = finite_scale("linear-ag", scale)
        if table is None:
            raise InvalidRequest("guidance='linear-ag' needs table=: a calibration table from `genloom calibrate "
                                 "linear-ag` for this model, sampler, step count and scale.")
        tab = table if isinstance(table, LinearAGTable) else LinearAGTable.load(table)
        if context is not None:
            model = context.model
            sha = model.weights[0].sha256 if model.weights else ""
            if tab.model != model.spec.name or (tab.weights_sha256 and sha and tab.weights_sha256 != sha):
                raise InvalidRequest(f"The LinearAG table was fitted for model {tab.model!r} "
                                     f"(weights {tab.weights_sha256[:12]}…), not {model.spec.name!r} "
                                     f"({sha[:12]}…); calibrate one for this model.")
        if not math.isclose(tab.scale, float(scale)):
            raise InvalidRequest(f"The LinearAG table was fitted at guidance_scale {tab.scale}, not {scale}.")
        return cls(scale=float(scale), table=tab)

    def init_state(self, batch_size: int) -> LinearAGState:
        return LinearAGState()

    def _check(self, info: StepInfo) -> None:
        t = self.table
        if info.num_steps != t.steps or (info.sampler and info.sampler != t.sampler):
            raise InvalidRequest(f"The LinearAG table was fitted for {t.steps} steps of {t.sampler!r}; this run has "
                                 f"{info.num_steps} steps of {info.sampler!r}.")
        if info.stage != "predictor" or info.cached:
            raise InvalidRequest("LinearAG runs with first-order diffusion samplers (one evaluation per step).")

    def request(self, info: StepInfo, state: LinearAGState) -> list[BranchRequest]:
        self._check(info)
        i = info.step
        if self.scale == 1.0 or not bool(self.table.guided[i]) or bool(self.table.replace[i]):
            return []
        return [BranchRequest("uncond", rows=torch.ones(info.batch_size, dtype=torch.bool), null=True)]

    def combine(self, info: StepInfo, outputs: BranchOutputs, state: LinearAGState) -> torch.Tensor:
        i, cond = info.step, outputs["cond"]
        uncond = outputs["uncond"] if "uncond" in outputs else None
        if uncond is None and bool(self.table.replace[i]) and state.cond is not None and state.uncond is not None:
            a, b, c, d = (float(v) for v in self.table.coefficients[i])
            uncond = a * cond + b * state.cond + c * state.uncond + d
            state.estimated.append(i)
        state.cond, state.uncond = cond, uncond
        if uncond is None or self.scale == 1.0:
            return cond
        s = self.scale - 1.0
        return contrast(cond, uncond, s)

    def report(self, state: LinearAGState) -> dict[str, Any]:
        return {"policy": "linear-ag", "estimated_steps": state.estimated}


class _Recorder:
    """Full CFG that keeps every step's conditional and unconditional predictions (calibration data)."""

    name, space = "linear-ag-calibration", "affine"

    def __init__(self, scale: float, steps: int) -> None:
        self.scale, self.cond, self.uncond = scale, [[] for _ in range(steps)], [[] for _ in range(steps)]

    def init_state(self, batch_size: int) -> None:
        return None

    def request(self, info: StepInfo, state: None) -> list[BranchRequest]:
        if info.stage != "predictor":
            raise InvalidRequest("LinearAG calibrates first-order diffusion samplers (one evaluation per step).")
        return [BranchRequest("uncond", rows=torch.ones(info.batch_size, dtype=torch.bool), null=True)]

    def combine(self, info: StepInfo, outputs: BranchOutputs, state: None) -> torch.Tensor:
        self.cond[info.step].append(outputs["cond"].cpu())
        self.uncond[info.step].append(outputs["uncond"].cpu())
        s = self.scale - 1.0
        return contrast(outputs["cond"], outputs["uncond"], s)


def calibrate(pipe: Any, *, sampler: str, steps: int, scale: float, num: int = 200, seed: int = 0, k_full: int = 2,
              batch_size: int = 50, log: Any = print) -> LinearAGTable:
    """Fit a LinearAG table from ``num`` full-CFG trajectories of ``pipe`` (balanced labels, seeds from ``seed``)."""
    from ...engine.progress import RunContext
    from ...engine.sampling import SampleBatch
    from ...engine.seeding import ImageRNG

    spec = pipe.spec
    if spec.null_class is None or not spec.num_classes:
        raise InvalidRequest(f"Model {spec.name!r} has no null class: LinearAG replaces unconditional evaluations.")
    if not 1 <= k_full < steps // 2:
        raise InvalidRequest(f"k_full must be in [1, {steps // 2 - 1}] for {steps} steps (full-CFG steps before the "
                             f"first estimated one, within the first half), got {k_full}.")
    request = pipe.check(labels=[0], sampler=sampler, steps=steps, guidance="cfg", guidance_scale=scale)
    sampler_obj = request.sampler.factory(**request.sampler_options)
    recorder = _Recorder(scale, steps)
    labels = [i % spec.num_classes for i in range(num)]
    with torch.inference_mode():
        for lo in range(0, num, batch_size):
            hi = min(num, lo + batch_size)
            batch = SampleBatch(labels=torch.tensor(labels[lo:hi], device=pipe.model.device),
                                rng=ImageRNG(list(range(seed + lo, seed + hi))), steps=steps, policy=recorder,
                                decode=False)
            sampler_obj.sample(pipe.model, batch, RunContext())
            log(f"calibration trajectories {hi}/{num}")
    if len(recorder.cond[-1]) == 0 or any(len(c) == 0 for c in recorder.cond):
        raise InvalidRequest(f"Sampler {sampler!r} did not evaluate every one of the {steps} steps once; LinearAG "
                             f"calibrates first-order samplers.")
    cond = [torch.cat(c) for c in recorder.cond]
    uncond = [torch.cat(u) for u in recorder.uncond]
    replace, guided = default_schedule(steps, k_full)
    coefficients, r2 = fit_table(cond, uncond, replace)
    weights = pipe.model.weights[0].sha256 if pipe.model.weights else ""
    return LinearAGTable(coefficients=coefficients, replace=replace, guided=guided, r2=r2, model=spec.name,
                         weights_sha256=weights, sampler=sampler, steps=steps, scale=float(scale))
