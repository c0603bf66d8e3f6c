"""The options of the built-in policies, declared once (torch-free: registration and the CLI read them)."""

from __future__ import annotations

import math
from typing import Any

from ...engine.errors import InvalidRequest
from ...engine.options import Option


def require_scale(policy: str, scale: Any, meaning: str = "w = 1 is no guidance") -> None:
    """A policy asked for without a scale: the error says how to give one. A model's default scale comes only with
    its default policy (it means another thing to another policy), so naming another policy needs a scale."""
    if scale is None:
        raise InvalidRequest(f"guidance={policy!r} needs a guidance scale ({meaning}): pass one with --scale W "
                             f"(API: guidance_scale=W); a model's default scale goes only with its default policy.")


def finite_scale(policy: str, scale: Any) -> float:
    """The policy's guidance_scale as a float, or a typed error naming the policy (w = 1 is no guidance)."""
    require_scale(policy, scale)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise InvalidRequest(f"guidance={policy!r} needs a finite guidance_scale (w = 1 is none), got {scale!r}.")
    return float(scale)


SCHEDULES = ("constant", "linear", "step_window", "sigma_window", "power_cosine")
FORMULATIONS = ("imagen", "original")
RESCALE_SPACES = ("native", "x0")
#: the options that shape one schedule: given without ``schedule``, they name it; given with another, an error
SCHEDULE_OPTIONS = {"step_window": ("start", "stop"), "sigma_window": ("sigma_lo", "sigma_hi"),
                    "power_cosine": ("power",)}

CFG_OPTIONS = (
    Option("schedule", "str", None, "how the strength varies over the steps; default: the schedule whose options "
           "are given (start/stop, sigma_lo/sigma_hi, power), else linear (VAR's ramp over scales) for next-scale "
           "models and constant for diffusion", choices=SCHEDULES),
    Option("formulation", "str", "imagen", "imagen: w = 1 is no guidance; original: s = 0 is none (w = s + 1)",
           choices=FORMULATIONS),
    Option("start", "float", 0.0, "step_window: first guided fraction of the steps (diffusers semantics)",
           minimum=0.0, maximum=1.0),
    Option("stop", "float", 1.0, "step_window: end of the guided fraction of the steps", minimum=0.0, maximum=1.0),
    Option("sigma_lo", "float", 0.0, "sigma_window: guidance on for EDM sigma in (sigma_lo, sigma_hi]",
           minimum=0.0),
    Option("sigma_hi", "float", None, "sigma_window: upper bound (default: infinity)", minimum=0.0),
    Option("power", "float", 1.0, "power_cosine: exponent p of w(t) = 1 + (w − 1)·(1 − cos(π(1 − t)^p))/2",
           minimum=0.0, above_minimum=True),
    Option("rescale", "float", 0.0, "guidance rescale φ (Lin et al. 2023)", minimum=0.0, maximum=1.0),
    Option("rescale_space", "str", "native", "where the rescale's std is measured", choices=RESCALE_SPACES),
)

AG_SIMILARITY = ("eps", "x0", "x0-centred", "native")
AG_OPTIONS = (
    Option("threshold", "float", 0.99, "γ̄: a sample switches to conditional-only steps once the cosine similarity "
           "of its conditional and unconditional predictions exceeds it (1 = CFG throughout, -1 = CFG at the "
           "first step only)", minimum=-1.0, maximum=1.0),
    Option("similarity", "str", "eps", "the space the similarity is measured in (the paper: eps; x0-centred: x̂0 "
           "with each channel's spatial mean removed, for zero-terminal-SNR models whose eps and x̂0 agree from "
           "the first step)",
           choices=AG_SIMILARITY),
)

ATG_OPTIONS = (
    Option("guide_weights", "path", None, "the weaker guide checkpoint of the same model (path, hf://… or "
           "asset:…); required"),
)

GFCG_SCALE_RULES = ("ratio", "one_minus_pc", "margin")
GFCG_MODES = ("same_step", "lagged")
GFCG_REFERENCE_MODELS = ("main", "guide")
GFCG_OPTIONS = (
    Option("classifier", "str", "shapes-cnn", "registered classifier over the model's classes (inference only)"),
    Option("classifier_weights", "path", None, "its weights (default: the classifier's own)"),
    Option("scale_rule", "str", "ratio", "per-sample weight w_max·κ from the classifier's confusion: ratio "
           "κ = p_ref/(p_c + p_ref), one_minus_pc κ = 1 − p_c, margin κ = (1 + p_ref − p_c)/2",
           choices=GFCG_SCALE_RULES),
    Option("mode", "str", "same_step", "same_step: classify this step's conditional x̂0, then evaluate the "
           "reference (two forwards); lagged: use the previous step's reference (one packed forward)",
           choices=GFCG_MODES),
    Option("cfg_scale", "float", 1.0, "add CFG with this w (1 = none): D_c + (w − 1)(D_c − D_u) + w_i(D_c − D_ref)",
           minimum=0.0),
    Option("sigma_lo", "float", 0.0, "classifier guidance on for EDM sigma in (sigma_lo, sigma_hi]", minimum=0.0),
    Option("sigma_hi", "float", None, "upper bound of the sigma window (default: infinity)", minimum=0.0),
    Option("reference_model", "str", "main", "which network evaluates the reference class: main, or guide (the "
           "weaker model of guide_weights=, autoguidance's)", choices=GFCG_REFERENCE_MODELS),
    Option("guide_weights", "path", None, "the weaker model, for reference_model='guide'"),
    Option("choose_scale", "int", 2, "next-scale models: the scale whose decoded preview picks each sample's "
           "reference class and weight, fixed from then on (its rows are prefilled over the earlier scales)",
           minimum=1),
)

LINEAR_AG_OPTIONS = (
    Option("table", "path", None, "the calibration table from `genloom calibrate linear-ag` (fitted for this model, "
           "sampler, step count and scale); required"),
)
