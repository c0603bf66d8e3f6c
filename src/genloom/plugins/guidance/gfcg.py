"""Gradient-free classifier guidance (Shenoy et al. 2024): a classifier, in inference mode only, reads the x̂0 of
the conditional branch (decoded for latent models), picks the class each sample is most confused with as a
conditional reference, and a per-sample scale from how confused it is; the guided prediction moves away from that
reference: D̃ = D_c + w_i·(D_c − D_ref) (+ w_cfg·(D_c − D_u) when combined with CFG).

The paper's exact scale rule and reference rule are not verified (spec §3.2, [R]); the stated design is built with
the choices named: ``scale_rule`` ratio (default: κ = p_ref/(p_c + p_ref)), one_minus_pc (κ = 1 − p_c) or margin
(κ = (1 + p_ref − p_c)/2), w_i = w_max·κ; ``mode`` same-step (classify this step's D_c, then evaluate the
reference: two sequential forwards) or lagged (the previous step's choice, one packed forward); a σ window; and
``reference_model`` main or guide (the reference evaluated by autoguidance's weaker model, which with
``cfg_scale`` 1 is ATG with a reference class at no extra NFE). The chosen reference classes and scales are
recorded per step in the result's telemetry.

On next-scale models (spec §3.6, option (a)) the classifier reads the decoded preview of the scales so far at
``choose_scale``; each sample's reference class and weight are fixed there, and the reference branch starts at that
scale — its rows' KV caches are prefilled over the earlier scales with the reference label (one block-causal
forward), so the cached keys and values never mix two classes. Before ``choose_scale`` only CFG (if any) acts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from ...engine.errors import InvalidRequest
from ...engine.guidance import BranchOutputs, BranchRequest, GuidanceContext, StepInfo
from .cfg import contrast
from .declarations import GFCG_MODES, GFCG_REFERENCE_MODELS, GFCG_SCALE_RULES, require_scale


@dataclass
class GFCGState:
    reference: torch.Tensor | None = None  # per sample, from the last classification
    weight: torch.Tensor | None = None
    applied: torch.Tensor | None = None  # the scales that go with the reference branch evaluated this step
    labels: torch.Tensor | None = None  # the conditional labels (seen at the first combine)
    steps: list[dict[str, Any]] = field(default_factory=list)


def confusion_scale(probs: torch.Tensor, target: torch.Tensor, rule: str, w_max: float) -> tuple[torch.Tensor,
                                                                                                  torch.Tensor]:
    """(reference class ≠ target, per-sample scale in [0, w_max]) from classifier probabilities (B, K)."""
    p_c = probs.gather(1, target[:, None])[:, 0]
    others = probs.scatter(1, target[:, None], -1.0)
    p_ref, reference = others.max(dim=1)
    if rule == "ratio":
        kappa = p_ref / (p_c + p_ref).clamp_min(1e-12)
    elif rule == "one_minus_pc":
        kappa = 1 - p_c
    else:  # margin
        kappa = (1 + p_ref - p_c) / 2
    return reference, (w_max * kappa).clamp(0.0, w_max)


@dataclass(frozen=True)
class GFCG:
    scale: float  # w_max of the classifier term
    classifier: Any
    decode: Any  # x̂0 (model space) → images in [-1, 1]
    scale_rule: str = "ratio"
    mode: str = "same_step"
    cfg_scale: float = 1.0
    sigma_lo: float = 0.0
    sigma_hi: float = math.inf
    reference_model: str = "main"
    guide: Any = None
    choose_scale: int = 2
    name: str = "gfcg"
    space: str = "affine"

    @property
    def networks(self) -> dict[str, Any]:
        return {"guide": self.guide} if self.guide is not None else {}

    @classmethod
    def create(cls, scale: float | None = None, classifier: str = "shapes-cnn", classifier_weights: Any = None,
               scale_rule: str = "ratio", mode: str = "same_step", cfg_scale: float = 1.0, sigma_lo: float = 0.0,
               sigma_hi: float | None = None, reference_model: str = "main", guide_weights: Any = None,
               choose_scale: int = 2, context: GuidanceContext | None = None) -> GFCG:
        require_scale("gfcg", scale, "w_max ≥ 0, the largest classifier-guidance weight")
        if not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale < 0:
            raise InvalidRequest(f"guidance='gfcg' needs guidance_scale = w_max ≥ 0 (the largest classifier-guidance "
                                 f"weight), got {scale!r}.")
        for name, value, choices in (("scale_rule", scale_rule, GFCG_SCALE_RULES), ("mode", mode, GFCG_MODES),
                                     ("reference_model", reference_model, GFCG_REFERENCE_MODELS)):
            if value not in choices:
                raise InvalidRequest(f"GFCG {name} must be one of {choices}, got {value!r}.")
        sigma_hi = math.inf if sigma_hi is None else sigma_hi
        if not 0 <= sigma_lo < sigma_hi:
            raise InvalidRequest(f"GFCG sigma window needs 0 <= sigma_lo < sigma_hi, got ({sigma_lo}, {sigma_hi}].")
        if context is None:
            raise InvalidRequest("GFCG needs the loaded model's context; use it through a pipeline.")
        spec = context.model.spec
        if not classifier:
            raise InvalidRequest("GFCG needs a classifier (a registered name, e.g. shapes-cnn).")
        clf = context.classifier(classifier, classifier_weights)
        if clf.num_classes != spec.num_classes:
            raise InvalidRequest(f"Classifier {classifier!r} has {clf.num_classes} classes, model {spec.name!r} "
                                 f"{spec.num_classes}; GFCG needs a classifier over the model's own classes.")
        guide = None
        if spec.paradigm.value == "next-scale" and spec.default_steps and not 1 <= choose_scale < spec.default_steps:
            raise InvalidRequest(f"GFCG choose_scale must name a scale after the first of {spec.name!r}'s "
                                 f"{spec.default_steps}: 1 … {spec.default_steps - 1}, got {choose_scale}.")
        if reference_model == "guide":
            if guide_weights is None:
                raise InvalidRequest("GFCG with reference_model='guide' needs guide_weights= (the weaker model).")
            from .autoguidance import AutoGuidance

            guide = AutoGuidance.create(scale=2.0, guide_weights=guide_weights, context=context).guide
        return cls(scale=float(scale), classifier=clf, decode=context.model.decode, scale_rule=scale_rule, mode=mode,
                   cfg_scale=float(cfg_scale), sigma_lo=float(sigma_lo), sigma_hi=float(sigma_hi),
                   reference_model=reference_model, guide=guide, choose_scale=int(choose_scale))

    # --- the branch protocol ----------------------------------------------------------------------------------
    def init_state(self, batch_size: int) -> GFCGState:
        return GFCGState()

    def request(self, info: StepInfo, state: GFCGState) -> list[BranchRequest]:
        every = torch.ones(info.batch_size, dtype=torch.bool)
        requests = [BranchRequest("uncond", rows=every, null=True)] if self.cfg_scale != 1.0 else []
        if info.cached:  # next-scale: choose once from the preview, keep the branch from then on
            if info.step == self.choose_scale and self.scale > 0 and info.preview is not None:
                if state.labels is None:
                    raise InvalidRequest("GFCG guides class-conditional models; this model has no labels.")
                self._classify(info.preview(), state.labels, state, info)
            if state.reference is not None:
                requests.append(self._reference_branch(state))
            return requests
        state.applied = None
        if self.mode == "lagged" and state.reference is not None and self._in_window(info):
            requests.append(self._reference_branch(state))
        return requests

    def refine(self, info: StepInfo, outputs: BranchOutputs, state: GFCGState) -> list[BranchRequest]:
        """Same-step mode: classify this step's conditional x̂0, then ask for the reference branch."""
        if not self._in_window(info) or self.scale == 0.0:
            return []
        self._classify(self.decode(outputs.x0("cond")), self._targets(outputs), state, info)
        return [self._reference_branch(state)] if self.mode == "same_step" else []

    def combine(self, info: StepInfo, outputs: BranchOutputs, state: GFCGState) -> torch.Tensor:
        if state.labels is None and outputs.labels is not None:
            state.labels = outputs.labels.cpu()  # next-scale models classify in request(), where labels are not
        cond = outputs["cond"]
        guided = cond
        if "uncond" in outputs:
            s = self.cfg_scale - 1.0
            guided = contrast(cond, outputs["uncond"], s)
        if "reference" in outputs and state.applied is not None:
            w = state.applied.to(cond).view(-1, *([1] * (cond.dim() - 1)))
            guided = guided + w * (cond - outputs["reference"])
        return guided

    def report(self, state: GFCGState) -> dict[str, Any]:
        return {"policy": "gfcg", "steps": state.steps}

    # --- helpers ------------------------------------------------------------------------------------------------
    def _in_window(self, info: StepInfo) -> bool:
        if info.sigma is None or info.alpha is None:
            return True
        edm = float((info.sigma / info.alpha).flatten()[0])
        return self.sigma_lo < edm <= self.sigma_hi

    def _classify(self, images: torch.Tensor, target: torch.Tensor, state: GFCGState, info: StepInfo) -> None:
        images = images.float()
        size = self.classifier.image_size
        if size and images.shape[-2:] != (size, size):  # the classifier's own input size
            images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", antialias=True)
        probs = self.classifier.logits(images).softmax(dim=1).cpu()
        state.reference, state.weight = confusion_scale(probs, target, self.scale_rule, self.scale)
        state.steps.append({"step": info.step, "reference": state.reference.tolist(),
                            "scale": [round(float(w), 6) for w in state.weight]})

    def _targets(self, outputs: BranchOutputs) -> torch.Tensor:
        if outputs.labels is None:
            raise InvalidRequest("GFCG guides class-conditional models; this model has no labels.")
        return outputs.labels.cpu()

    def _reference_branch(self, state: GFCGState) -> BranchRequest:
        assert state.reference is not None and state.weight is not None
        state.applied = state.weight
        network = "guide" if self.reference_model == "guide" else "main"
        return BranchRequest("reference", rows=torch.ones(len(state.reference), dtype=torch.bool),
                             labels=state.reference, network=network)
