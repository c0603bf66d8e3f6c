"""The diffusion loop: one denoising loop over diffusers schedulers, guidance through the branch protocol.

Per evaluation the policy names the branches it needs; :class:`genloom.samplers.branches.GuidedDenoiser`
packs every row into one forward per network, combines and counts NFE per sample; the scheduler steps. The
model supplies its noise schedule; the scheduler is built from it, so a model trained with scaled-linear betas
and ε-prediction is sampled with exactly those.
"""

from __future__ import annotations

import inspect
import math
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from ..engine.errors import InvalidRequest
from ..engine.guidance import StepInfo
from ..engine.parameterisation import to_x0
from ..engine.progress import RunContext
from ..engine.sampling import SampleBatch, SampleOutput
from .branches import GuidedDenoiser

DIFFUSERS_PREDICTION = {"eps": "epsilon", "v": "v_prediction", "x0": "sample"}
_IMPORT_LOCK = threading.Lock()
#: scheduler settings the model's noise schedule decides; a sampler option may not change them
MODEL_DEFINED = frozenset({"num_train_timesteps", "beta_schedule", "beta_start", "beta_end", "prediction_type",
                           "trained_betas", "variance_type"})


@dataclass(frozen=True)
class NoiseSchedule:
    """A model's training noise schedule, in diffusers' terms. ``timestep_offset``: the model's own time is
    diffusers' timestep plus this (DiMR counts 1..1000). ``learned_variance``: the network also outputs
    per-channel variance interpolation values after its prediction (DiT style). ``timestep_spacing``: how the
    official sampler picks its steps, the default of every scheduler that takes the setting."""

    num_train_timesteps: int = 1000
    beta_schedule: str = "scaled_linear"
    beta_start: float = 0.00085
    beta_end: float = 0.012
    prediction_type: str = "eps"
    timestep_offset: int = 0
    learned_variance: bool = False
    timestep_spacing: str | None = None  # the official sampler's spacing (DiT's respacing = "linspace")

    def betas(self) -> torch.Tensor:
        """float64 betas, as the official codes compute them."""
        n = self.num_train_timesteps
        if self.beta_schedule == "linear":
            return torch.linspace(self.beta_start, self.beta_end, n, dtype=torch.float64)
        if self.beta_schedule == "scaled_linear":
            return torch.linspace(self.beta_start ** 0.5, self.beta_end ** 0.5, n, dtype=torch.float64) ** 2
        if self.beta_schedule == "squaredcos_cap_v2":
            f = [math.cos((i / n + 0.008) / 1.008 * math.pi / 2) ** 2 for i in range(n + 1)]
            return torch.tensor([min(1 - f[i + 1] / f[i], 0.999) for i in range(n)], dtype=torch.float64)
        raise InvalidRequest(f"Unknown beta_schedule {self.beta_schedule!r}.")


class DiffusionModel(Protocol):
    """What a diffusion family provides to the loop."""

    noise_schedule: NoiseSchedule
    latent_shape: tuple[int, ...]
    null_class: int | None
    device: torch.device
    dtype: torch.dtype

    def denoise(self, x: torch.Tensor, timesteps: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Prediction at diffusers timesteps ``(B,)`` (float; may be fractional)."""
        ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Final latents → images in [-1, 1]."""
        ...


class TrainableDiffusionModel(DiffusionModel, Protocol):
    """What a diffusion family provides to trainers that reuse its network (f-distill): the network ``denoise``
    calls, the same model around another network of that architecture, the encoder into its space, and
    intermediate features for a discriminator head."""

    def denoiser(self) -> torch.nn.Module:
        """The network :meth:`denoise` runs."""
        ...

    def with_denoiser(self, net: torch.nn.Module) -> TrainableDiffusionModel:
        """This model (schedule, autoencoder, conditioning) around ``net`` instead of :meth:`denoiser`."""
        ...

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] → the model's input space (latents, scaled; pixels as they are)."""
        ...

    def denoise_features(self, x: torch.Tensor, timesteps: torch.Tensor,
                         labels: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """:meth:`denoise`'s prediction and the network's inner feature maps ``(B, C, h, w)`` (its bottleneck)."""
        ...


def alphas_cumprod(schedule: NoiseSchedule) -> torch.Tensor | None:
    """ᾱ per integer timestep (float64), or None for flow matching (α = 1 − t/T, σ = t/T)."""
    return None if schedule.prediction_type == "flow" else torch.cumprod(1 - schedule.betas(), dim=0)


def alpha_sigma(schedule: NoiseSchedule, timesteps: torch.Tensor,
                abar: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample α and σ of ``x_t = α·x0 + σ·ε`` at (possibly fractional) diffusers timesteps: ᾱ interpolated
    linearly between integer steps, as the loop's previews do."""
    t = timesteps.double().cpu()
    if schedule.prediction_type == "flow":
        s = t / schedule.num_train_timesteps
        return (1 - s).float(), s.float()
    table = alphas_cumprod(schedule) if abar is None else abar.double().cpu()
    lo = t.floor().clamp(0, len(table) - 1)
    hi = (lo + 1).clamp(max=len(table) - 1)
    frac = (t - lo).clamp(0, 1)
    a = table[lo.long()] * (1 - frac) + table[hi.long()] * frac
    return a.sqrt().float(), (1 - a).sqrt().float()


@dataclass(frozen=True)
class SchedulerRecipe:
    cls: str
    predictions: frozenset[str]
    config: tuple[tuple[str, Any], ...] = ()


RECIPES = {
    "ddpm": SchedulerRecipe("DDPMScheduler", frozenset({"eps", "v", "x0"}), (("clip_sample", False),)),
    "ddim": SchedulerRecipe("DDIMScheduler", frozenset({"eps", "v", "x0"}), (("clip_sample", False),)),
    "dpm++2m": SchedulerRecipe("DPMSolverMultistepScheduler", frozenset({"eps", "v", "x0"}),
                               (("algorithm_type", "dpmsolver++"), ("solver_order", 2))),
    "dpm++3s": SchedulerRecipe("DPMSolverSinglestepScheduler", frozenset({"eps", "v", "x0"}),
                               (("algorithm_type", "dpmsolver++"), ("solver_order", 3))),
    "euler": SchedulerRecipe("EulerDiscreteScheduler", frozenset({"eps", "v", "x0"})),
    "heun": SchedulerRecipe("HeunDiscreteScheduler", frozenset({"eps", "v", "x0"}), (("clip_sample", False),)),
    "unipc": SchedulerRecipe("UniPCMultistepScheduler", frozenset({"eps", "v", "x0"})),
    "flow-euler": SchedulerRecipe("FlowMatchEulerDiscreteScheduler", frozenset({"flow"})),
}


def make_scheduler(name: str, schedule: NoiseSchedule, **overrides: Any) -> Any:
    """The diffusers scheduler ``name`` configured from the model's schedule (typed errors for misfits)."""
    recipe = RECIPES[name]
    if schedule.prediction_type not in recipe.predictions:
        fitting = sorted(n for n, r in RECIPES.items() if schedule.prediction_type in r.predictions)
        raise InvalidRequest(
            f"Sampler {name!r} does not support {schedule.prediction_type!r}-prediction models; use one of "
            f"{fitting}.")
    with _IMPORT_LOCK:  # importing diffusers' lazy module from several threads at once is not safe
        import diffusers

        cls = getattr(diffusers, recipe.cls)
    config: dict[str, Any] = {"num_train_timesteps": schedule.num_train_timesteps}
    if schedule.prediction_type != "flow":
        config.update(beta_schedule=schedule.beta_schedule, beta_start=schedule.beta_start,
                      beta_end=schedule.beta_end, prediction_type=DIFFUSERS_PREDICTION[schedule.prediction_type])
    if name == "ddpm" and schedule.learned_variance:
        config["variance_type"] = "learned_range"
    config.update(dict(recipe.config))
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"} - MODEL_DEFINED
    if schedule.timestep_spacing is not None and "timestep_spacing" in accepted:
        config["timestep_spacing"] = schedule.timestep_spacing
    unknown = set(overrides) - accepted
    if unknown:
        fixed = sorted(unknown & MODEL_DEFINED)
        hint = f" ({', '.join(fixed)}: set by the model's own noise schedule)" if fixed else ""
        raise InvalidRequest(f"Unknown option(s) {sorted(unknown)} for sampler {name!r}{hint}; it accepts "
                             f"{sorted(accepted)}.")
    config.update(overrides)
    return cls(**config)


class DiffusionSampler:
    """A named diffusers scheduler driven by genloom's loop. Options are scheduler config overrides
    (e.g. ``timestep_spacing="trailing"``)."""

    def __init__(self, scheduler: str, **options: Any) -> None:
        if scheduler not in RECIPES:
            raise InvalidRequest(f"Unknown diffusers scheduler recipe {scheduler!r}; known: {sorted(RECIPES)}.")
        self.name, self.options = scheduler, options

    def sample(self, model: DiffusionModel, batch: SampleBatch, ctx: RunContext) -> SampleOutput:
        schedule = model.noise_schedule
        sched = make_scheduler(self.name, schedule, **self.options)
        sched.set_timesteps(batch.steps, device=model.device)
        b = len(batch)
        noise_sigma = getattr(sched, "init_noise_sigma", 1.0)  # flow matching has none: x_1 is the noise
        x = batch.noise(model.latent_shape, device=model.device, dtype=model.dtype) * noise_sigma
        abar_table = alphas_cumprod(schedule)
        denoiser = GuidedDenoiser(model, batch.labels, model.null_class, batch.policy, b)
        step_kwargs = {"generator": batch.rng.generators} if "generator" in inspect.signature(sched.step).parameters \
            else {}
        timesteps = sched.timesteps
        channels = model.latent_shape[0]
        for i, t in enumerate(timesteps):
            ctx.check()
            x_in = sched.scale_model_input(x, t) if hasattr(sched, "scale_model_input") else x
            info = _step_info(i, len(timesteps), b, float(t), schedule, abar_table, x, sched, self.name)
            t_rows = torch.full((b,), float(t), device=model.device, dtype=torch.float32)
            full: list[torch.Tensor] = []

            def forward_for(net: Any) -> Any:
                def forward(xr: torch.Tensor, lr: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor:
                    out = net.denoise(xr, t_rows[idx], lr)
                    full.append(out)
                    return out[:, :channels] if schedule.learned_variance else out
                return forward

            pred = denoiser(forward_for, x_in, info)
            if schedule.learned_variance and self.name == "ddpm":
                pred = torch.cat((pred, full[0][:b, channels:]), dim=1)  # variance from the conditional rows

            def preview(p: torch.Tensor = pred[:, :channels], xi: torch.Tensor = x_in, si: StepInfo = info) -> Any:
                return model.decode(to_x0(p, xi, si))  # decoded only when a progress callback asks

            x = sched.step(pred, t, x, **step_kwargs).prev_sample
            ctx.step_done(i + 1, len(timesteps), preview=preview)
        report = denoiser.report()
        return SampleOutput(images=batch.finish(model, x), nfe=denoiser.nfe,
                            telemetry={"guidance": report} if report else {})


def _step_info(i: int, n: int, b: int, t: float, schedule: NoiseSchedule, abar_table: torch.Tensor | None,
               x: torch.Tensor, sched: Any, sampler: str = "") -> StepInfo:
    """α and σ of the model input at timestep ``t`` (ᾱ interpolated for fractional timesteps)."""
    stage = "predictor" if getattr(sched, "state_in_first_order", True) else "corrector"
    a, s = alpha_sigma(schedule, torch.tensor([t], dtype=torch.float64), abar_table)
    alpha, sigma = float(a[0]), float(s[0])

    def full(v: float) -> torch.Tensor:
        return torch.full((b,), v, device=x.device, dtype=x.dtype)

    return StepInfo(step=i, num_steps=n, batch_size=b,
                    time=(t + schedule.timestep_offset) / schedule.num_train_timesteps,
                    prediction_type=schedule.prediction_type, sigma=full(sigma), alpha=full(alpha), stage=stage,
                    sampler=sampler)
