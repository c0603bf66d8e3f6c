"""Autoguidance (Karras et al. 2024): guide with a weaker model of the same family — an earlier or smaller
checkpoint — instead of the unconditional branch: p_guide + w·(p_c − p_guide), both conditioned on the label.
The guide network is loaded once per pipeline (``guide_weights=``, through the pipeline's own loader, so it gets
the same family options, device and dtype) and evaluated as its own packed forward; NFE counts its rows too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ...engine.errors import InvalidRequest
from ...engine.guidance import BranchOutputs, BranchRequest, GuidanceContext, StepInfo
from .cfg import contrast
from .declarations import finite_scale


@dataclass(frozen=True)
class AutoGuidance:
    scale: float
    guide: Any
    name: str = "autoguidance"
    space: str = "affine"

    @property
    def networks(self) -> dict[str, Any]:
        return {"guide": self.guide}

    @classmethod
    def create(cls, scale: float | None = None, guide_weights: Any = None,
               context: GuidanceContext | None = None) -> AutoGuidance:
        scale = finite_scale("autoguidance", scale)
        if guide_weights is None:
            raise InvalidRequest("guidance='autoguidance' needs guide_weights=: a weaker checkpoint of the same model "
                                 "(an earlier or smaller one), path, hf://… or asset:….")
        if context is None:
            raise InvalidRequest("autoguidance needs the loaded model's context; use it through a pipeline.")
        main = context.model
        guide = context.load(guide_weights)
        mine, theirs = main.spec, guide.spec
        if theirs.plugin != mine.plugin or type(guide) is not type(main):
            raise InvalidRequest(f"The guide ({theirs.name!r}, {type(guide).__name__}) is not of the same family as "
                                 f"the model ({mine.name!r}, {type(main).__name__}).")
        if theirs.num_classes != mine.num_classes or theirs.null_class != mine.null_class:
            raise InvalidRequest(f"The guide has {theirs.num_classes} classes, the model {mine.num_classes}: they "
                                 f"must share their labels.")
        if getattr(guide, "latent_shape", None) != getattr(main, "latent_shape", None):
            raise InvalidRequest(f"The guide works on latents {guide.latent_shape}, the model on "
                                 f"{main.latent_shape}.")
        return cls(scale=float(scale), guide=guide)

    def init_state(self, batch_size: int) -> None:
        return None

    def request(self, info: StepInfo, state: None) -> list[BranchRequest]:
        if self.scale == 1.0:
            return []
        return [BranchRequest("guide", rows=torch.ones(info.batch_size, dtype=torch.bool), network="guide")]

    def combine(self, info: StepInfo, outputs: BranchOutputs, state: None) -> torch.Tensor:
        cond = outputs["cond"]
        if "guide" not in outputs:
            return cond
        s = self.scale - 1.0
        return contrast(cond, outputs["guide"], s)
