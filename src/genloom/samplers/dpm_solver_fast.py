"""The DPM-Solver the official DiMR (and U-ViT) code samples with: data prediction (DPM-Solver++ formulas),
"fast" step plan, order 3, time-uniform grid, continuous time from 1 to 1/1000 over the discrete VP schedule.

Re-derived from the spec (``dimr_lamamba.md`` §1.8 and §6.2): the grid has ``steps + 1`` points and an update of
order o spans o grid intervals, using the inner grid points as its intermediate stages; the intermediate times
come from inverting λ on the float32 log-α table. diffusers' single-step solver is close but not identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from ..engine.guidance import StepInfo
from ..engine.progress import RunContext
from ..engine.sampling import SampleBatch, SampleOutput
from .branches import GuidedDenoiser
from .diffusion import DiffusionModel, NoiseSchedule


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation with linear extrapolation at both ends (xp increasing)."""
    i = torch.searchsorted(xp, x).clamp(1, len(xp) - 1)
    x0, x1, y0, y1 = xp[i - 1], xp[i], fp[i - 1], fp[i]
    return y0 + (x - x0) * (y1 - y0) / (x1 - x0)


@dataclass
class DiscreteVP:
    """log α(t) of a discrete schedule, piecewise linear in t over t_k = k/N (k = 1..N), in float32."""

    t_array: torch.Tensor
    log_alpha: torch.Tensor

    @classmethod
    def from_schedule(cls, schedule: NoiseSchedule) -> DiscreteVP:
        betas = schedule.betas().float()
        n = schedule.num_train_timesteps
        return cls(torch.linspace(0.0, 1.0, n + 1)[1:], 0.5 * torch.log(1 - betas).cumsum(dim=0))

    def log_mean(self, t: torch.Tensor) -> torch.Tensor:
        return _interp(t, self.t_array, self.log_alpha)

    def std(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(1.0 - torch.exp(2.0 * self.log_mean(t)))

    def lam(self, t: torch.Tensor) -> torch.Tensor:
        m = self.log_mean(t)
        return m - 0.5 * torch.log(1.0 - torch.exp(2.0 * m))

    def inverse_lambda(self, lam: torch.Tensor) -> torch.Tensor:
        log_alpha = -0.5 * torch.logaddexp(torch.zeros_like(lam), -2.0 * lam)
        return _interp(log_alpha, self.log_alpha.flip(0), self.t_array.flip(0))


def fast_orders(steps: int) -> list[int]:
    """The official "fast" order plan for order 3: sums to ``steps``."""
    k = steps // 3 + 1
    if steps % 3 == 0:
        return [3] * (k - 2) + [2, 1]
    if steps % 3 == 1:
        return [3] * (k - 1) + [1]
    return [3] * (k - 1) + [2]


class DPMSolverFast:
    """Registered as ``dpm-solver-fast``; ``steps`` = NFE per sample without guidance. ``t_end``: the final time
    (official 1/1000)."""

    def __init__(self, t_end: float = 1e-3) -> None:
        if not 0 < t_end < 1:
            raise ValueError(f"t_end must lie in (0, 1), got {t_end}")
        self.t_end = t_end

    def sample(self, model: DiffusionModel, batch: SampleBatch, ctx: RunContext) -> SampleOutput:
        from ..engine.errors import InvalidRequest

        schedule = model.noise_schedule
        if schedule.prediction_type != "eps":
            raise InvalidRequest(f"Sampler 'dpm-solver-fast' needs an eps-prediction model, got "
                                 f"{schedule.prediction_type!r}; use a diffusers sampler (e.g. 'dpm++2m').")
        x = batch.noise(model.latent_shape, device=model.device, dtype=model.dtype)
        out = dpm_solver_fast(model, x, batch.labels, batch.steps, batch.policy, t_end=self.t_end,
                              on_update=lambda done, total: ctx.step_done(done, total), check=ctx.check)
        telemetry: dict[str, Any] = {"nfe_time": out.times}
        if out.guidance:
            telemetry["guidance"] = out.guidance
        return SampleOutput(images=batch.finish(model, out.x), nfe=out.nfe, telemetry=telemetry)


@dataclass
class SolverRun:
    x: torch.Tensor
    nfe: torch.Tensor
    times: list[float]  # model time (fraction of the horizon) of every evaluation, in call order
    per_update: list[torch.Tensor]
    guidance: dict[str, Any] = field(default_factory=dict)  # what the policy recorded (report(state))


def dpm_solver_fast(model: DiffusionModel, x: torch.Tensor, labels: torch.Tensor | None, steps: int,
                    policy: Any = None, t_end: float = 1e-3, on_update: Any = None, check: Any = None) -> SolverRun:
    """Run the official recipe from ``x`` (pure noise at t = 1). Returns the final latent and per-update latents."""
    schedule = model.noise_schedule
    vp = DiscreteVP.from_schedule(schedule)
    n_train = schedule.num_train_timesteps
    grid = torch.linspace(1.0, t_end, steps + 1)
    b = x.shape[0]
    denoiser = GuidedDenoiser(model, labels, model.null_class, policy, b)
    times: list[float] = []
    orders = fast_orders(steps)

    def x0_pred(xs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if check is not None:
            check()
        alpha, sigma = torch.exp(vp.log_mean(t)), vp.std(t)
        info = StepInfo(step=denoiser.evaluations, num_steps=steps, batch_size=b, time=float(t), prediction_type="eps",
                        sigma=torch.full((b,), float(sigma), dtype=xs.dtype, device=xs.device),
                        alpha=torch.full((b,), float(alpha), dtype=xs.dtype, device=xs.device),
                        sampler="dpm-solver-fast")
        timestep = t * n_train - schedule.timestep_offset
        t_rows = torch.full((b,), float(timestep), device=xs.device, dtype=torch.float32)

        def forward_for(net: Any) -> Any:
            return lambda xr, lr, idx: net.denoise(xr, t_rows[idx], lr)

        eps = denoiser(forward_for, xs, info)
        times.append(float(t))
        return (xs - sigma.to(xs) * eps) / alpha.to(xs)

    per_update = []
    i = 0
    for u, order in enumerate(orders):
        s, t = grid[i], grid[i + order]
        lam_s, lam_t = vp.lam(s), vp.lam(t)
        h = lam_t - lam_s
        r1 = (vp.lam(grid[i + 1]) - lam_s) / h if order >= 2 else None
        r2 = (vp.lam(grid[i + 2]) - lam_s) / h if order >= 3 else None
        x = _update(vp, x0_pred, x, s, t, h, lam_s, order, r1, r2)
        per_update.append(x)
        i += order
        if on_update is not None:
            on_update(u + 1, len(orders))
    return SolverRun(x=x, nfe=denoiser.nfe, times=times, per_update=per_update, guidance=denoiser.report())


def _coef(vp: DiscreteVP, t: torch.Tensor) -> tuple[float, float]:
    return float(torch.exp(vp.log_mean(t))), float(vp.std(t))


def _update(vp: DiscreteVP, x0_pred: Any, x: torch.Tensor, s: torch.Tensor, t: torch.Tensor, h: torch.Tensor,
            lam_s: torch.Tensor, order: int, r1: torch.Tensor | None, r2: torch.Tensor | None) -> torch.Tensor:
    """One singlestep DPM-Solver++ update of ``order`` from s to t (the spec's formulas)."""
    _, sigma_s = _coef(vp, s)
    alpha_t, sigma_t = _coef(vp, t)
    hf = float(h)
    phi_1 = math.expm1(-hf)
    m_s = x0_pred(x, s)
    if order == 1:
        return (sigma_t / sigma_s) * x - alpha_t * phi_1 * m_s
    assert r1 is not None
    s1 = vp.inverse_lambda(lam_s + r1 * h)
    alpha_s1, sigma_s1 = _coef(vp, s1)
    r1f = float(r1)
    x_s1 = (sigma_s1 / sigma_s) * x - alpha_s1 * math.expm1(-r1f * hf) * m_s
    m_s1 = x0_pred(x_s1, s1)
    if order == 2:
        return (sigma_t / sigma_s) * x - alpha_t * phi_1 * m_s - (0.5 / r1f) * alpha_t * phi_1 * (m_s1 - m_s)
    assert r2 is not None
    s2 = vp.inverse_lambda(lam_s + r2 * h)
    alpha_s2, sigma_s2 = _coef(vp, s2)
    r2f = float(r2)
    phi_12 = math.expm1(-r2f * hf)
    phi_22 = phi_12 / (r2f * hf) + 1
    x_s2 = (sigma_s2 / sigma_s) * x - alpha_s2 * phi_12 * m_s + (r2f / r1f) * alpha_s2 * phi_22 * (m_s1 - m_s)
    m_s2 = x0_pred(x_s2, s2)
    phi_2 = phi_1 / hf + 1
    return (sigma_t / sigma_s) * x - alpha_t * phi_1 * m_s + (1.0 / r2f) * alpha_t * phi_2 * (m_s2 - m_s)
