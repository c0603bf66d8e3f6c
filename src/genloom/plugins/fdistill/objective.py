"""f-distill's two alternating steps (spec §4.6–4.7) over diffusion models reached only through the trainable
diffusion-model protocol (:class:`genloom.samplers.diffusion.TrainableDiffusionModel`): the student and the fake
score are the teacher's family around copies of its network.

* Student: ``G(z) = x̂0(σ_T·z, T, c)`` — the student network read as a data prediction at the top noise level.
* Student step: ``g = h(r)·(D_fake − D_teacher)/mean|x − D_teacher|`` pushes each sample toward the teacher's
  (CFG-guided) denoised estimate and away from the fake score's, weighted by the divergence's h of the
  discriminator's density ratio; plus the non-saturating GAN term through the frozen teacher's features.
* Critic step: the fake score learns the student's distribution (x̂0 regression) and the head tells noised real
  data from noised student samples (logistic loss).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F

from ...kernels.dispatch import default_dispatcher
from ...samplers.diffusion import alphas_cumprod
from .discriminator import RatioHead
from .divergences import Divergence
from .prediction import noised, one_step, x0_prediction
from .ratio import EPS, RatioNormaliser, normalised_weights


@dataclass
class Draws:
    """The randomness of one iteration, drawn on the CPU from the run's generator in a fixed order (so a run is
    the same on any device and resumes bit-identically): the student's noise and labels, the matching loss's times
    and noise, and for a critic step the real images' rows and their independent times and noise."""

    z: torch.Tensor
    labels: torch.Tensor
    t: torch.Tensor
    eps: torch.Tensor
    real_rows: torch.Tensor | None = None
    real_t: torch.Tensor | None = None
    real_eps: torch.Tensor | None = None
    pair_rows: torch.Tensor | None = None  # a student step's rows of the teacher pairs (the regression loss)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Draws:
        """The same draws with ``fn`` applied to each tensor (absent ones stay None)."""
        return Draws(*(None if v is None else fn(v) for v in (getattr(self, f.name) for f in fields(self))))

    def to(self, device: torch.device) -> Draws:
        return self.map(lambda v: v.to(device))


@dataclass
class Regression:
    """A student step's teacher pairs (noise, labels, the teacher's samples) and the regression loss's weight."""

    z: torch.Tensor
    labels: torch.Tensor
    x0: torch.Tensor
    weight: float


class Distiller(torch.nn.Module):
    """The student, its EMA, the fake score and the ratio head around a frozen teacher; one method per step."""

    def __init__(self, teacher: Any, divergence: Divergence, guidance_scale: float, t_range: tuple[int, int],
                 ratio_bins: int = 10, ratio_ema: float = 0.0, gan_weight: float = 3e-3,
                 disc_weight: float = 1.0, cfg_from: int = 0, guide: torch.nn.Module | None = None,
                 guide_scale: float = 1.0) -> None:
        super().__init__()
        self.teacher = teacher
        teacher.denoiser().requires_grad_(False).eval()
        self.student = copy.deepcopy(teacher.denoiser()).requires_grad_(True).train()
        self.student_ema = copy.deepcopy(self.student).requires_grad_(False).eval()
        self.fake = copy.deepcopy(teacher.denoiser()).requires_grad_(True).train()
        self.divergence, self.guidance_scale = divergence, guidance_scale
        self.cfg_from = cfg_from  # CFG is baked in at t ≥ cfg_from (0: everywhere)
        self.guide = None if guide is None else guide.requires_grad_(False).eval()
        self.guide_scale = guide_scale
        self.gan_weight, self.disc_weight = gan_weight, disc_weight
        self.t_range = t_range
        self.conditional = teacher.spec.num_classes > 0  # a class-free teacher gets no labels (drawn ones unused)
        self.abar = alphas_cumprod(teacher.noise_schedule)
        self.t_top = teacher.noise_schedule.num_train_timesteps - 1
        shapes = self._feature_shapes()
        self.head = RatioHead(shapes)
        self.ratio = RatioNormaliser(ratio_bins, *t_range)

    # -- the models through the protocol ----------------------------------------------------------------------
    def _feature_shapes(self) -> list[tuple[int, int, int]]:
        x = torch.zeros((1, *self.teacher.latent_shape), device=self.teacher.device, dtype=self.teacher.dtype)
        with torch.no_grad():
            labels = torch.zeros(1, dtype=torch.long, device=x.device) if self.conditional else None
            _, feats = self.teacher.denoise_features(x, torch.zeros(1, device=x.device), labels)
        return [tuple(f.shape[1:]) for f in feats]  # type: ignore[misc]

    def x0(self, net: torch.nn.Module, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None,
           features: bool = False) -> Any:
        """The data prediction of the teacher's family around ``net`` (and its feature maps)."""
        labels = labels if self.conditional else None
        return x0_prediction(self.teacher.with_denoiser(net), x_t, t, labels, features, self.abar)

    def noised(self, x: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return noised(self.teacher, x, t, eps, self.abar)

    def generate(self, z: torch.Tensor, labels: torch.Tensor, net: torch.nn.Module | None = None) -> torch.Tensor:
        """One-step samples in the teacher's input space from the student (or ``net``)."""
        labels = labels if self.conditional else None
        return one_step(self.teacher.with_denoiser(net or self.student), z, labels, self.t_top, self.abar)

    def teacher_x0(self, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> Any:
        """(guided x̂0 without grad, conditional features with grad): the guidance baked in, as a stack of CFG and
        autoguidance combines it — ``D + (w − 1)(D − D_∅)·[t ≥ cfg_from] + (w_g − 1)(D − D_guide)``."""
        cond, feats = self.x0(self.teacher.denoiser(), x_t, t, labels, features=True)
        cond = cond.detach()
        refs, strengths = [], []
        with torch.no_grad():
            if self.guidance_scale != 1.0:
                null = torch.full_like(labels, self.teacher.null_class)
                refs.append(self.x0(self.teacher.denoiser(), x_t, t, null))
                strengths.append((t.cpu() >= self.cfg_from).double() * (self.guidance_scale - 1.0))
            if self.guide is not None and self.guide_scale != 1.0:
                refs.append(self.x0(self.guide, x_t, t, labels))
                strengths.append(torch.full((len(cond),), self.guide_scale - 1.0, dtype=torch.float64))
        if refs:
            cond = default_dispatcher()("guidance_combine", cond, refs, torch.stack(strengths))  # the policies' rule
        return cond, feats

    # -- the two steps ------------------------------------------------------------------------------------------
    def student_loss(self, d: Draws, regression: Regression | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """``L_fdiv + λ_G·softplus(−ℓ)`` (``+ λ_reg·MSE(G(z_i), teacher sample i)`` with teacher pairs); gradients
        reach only the student (the head is frozen for this step)."""
        self.head.requires_grad_(False)
        try:
            x = self.generate(d.z, d.labels)
            x_t = self.noised(x, d.t, d.eps)
            with torch.no_grad():
                d_fake = self.x0(self.fake, x_t, d.t, d.labels)
            d_teacher, feats = self.teacher_x0(x_t, d.t, d.labels)
            logits = self.head(feats)
            loss_fdiv, h = self.fdiv_loss(x, d_fake, d_teacher, logits, d.t)
            gan = F.softplus(-logits).mean()
        finally:
            self.head.requires_grad_(True)
        stats = {"f_distill_loss": float(loss_fdiv.detach()), "gan_loss_gen": float(gan.detach()),
                 "h_min": float(h.min()), "h_avg": float(h.mean()), "h_max": float(h.max())}
        loss = loss_fdiv + self.gan_weight * gan
        if regression is not None:
            reg = F.mse_loss(self.generate(regression.z, regression.labels).float(), regression.x0.float())
            stats["regression_loss"] = float(reg.detach())
            loss = loss + regression.weight * reg
        return loss, stats

    def fdiv_loss(self, x: torch.Tensor, d_fake: torch.Tensor, d_teacher: torch.Tensor, logits: torch.Tensor,
                  t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``½·mean((x − sg(x − g))²)`` whose gradient in x is ``g / numel``; → (loss, normalised h)."""
        r = self.ratio(logits, t)
        h = normalised_weights(self.divergence.h, r)
        with torch.no_grad():
            xf = x.detach().float()
            scale = (xf - d_teacher.float()).abs().mean(dim=tuple(range(1, x.dim())), keepdim=True) + EPS
            g = h.reshape((-1,) + (1,) * (x.dim() - 1)) * (d_fake.float() - d_teacher.float()) / scale
        return 0.5 * F.mse_loss(x.float(), (xf - g).detach(), reduction="mean"), h

    def critic_loss(self, d: Draws, real: torch.Tensor, real_labels: torch.Tensor) -> tuple[torch.Tensor,
                                                                                            dict[str, float]]:
        """Fake-score regression on noised student samples + the head's logistic loss (real 1, student 0)."""
        with torch.no_grad():
            x = self.generate(d.z, d.labels)
            x_t = self.noised(x, d.t, d.eps)
        fake_loss = F.mse_loss(self.x0(self.fake, x_t, d.t, d.labels).float(), x.float())
        with torch.no_grad():
            _, feats_fake = self.x0(self.teacher.denoiser(), x_t, d.t, d.labels, features=True)
            real_t = self.noised(real, d.real_t, d.real_eps)
            _, feats_real = self.x0(self.teacher.denoiser(), real_t, d.real_t, real_labels, features=True)
        disc = F.softplus(self.head(feats_fake)).mean() + F.softplus(-self.head(feats_real)).mean()
        return fake_loss + self.disc_weight * disc, {"fake_score_loss": float(fake_loss.detach()),
                                                    "gan_loss_disc": float(disc.detach())}

    @torch.no_grad()
    def start_student_from(self, state: dict[str, torch.Tensor]) -> None:
        """The student and its EMA from a student file's weights (the fake score and the head stay as built)."""
        self.student.load_state_dict(state, strict=True)
        self.student_ema.load_state_dict(state, strict=True)

    @torch.no_grad()
    def update_ema(self, decay: float) -> None:
        for pe, p in zip(self.student_ema.parameters(), self.student.parameters(), strict=True):
            pe.lerp_(p, 1 - decay)
