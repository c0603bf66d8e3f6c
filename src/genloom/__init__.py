"""genloom: sample, compare, guide and distill image generators through plugins.

``import genloom`` stays light (no torch): the torch-heavy parts load on first use.

    >>> import genloom
    >>> pipe = genloom.load("smoke")
    >>> result = pipe(labels=[0, 1], seed=0)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ._lazy import lazy_getattr
from .engine.engine import Engine, default_engine, reset_default_engine
from .engine.errors import (
    DeviceError,
    GenerationCancelled,
    GenloomError,
    InvalidRequest,
    ModelNotFound,
    NotRegistered,
    PluginError,
    UnsafeCheckpoint,
    WeightsError,
    WeightsMismatch,
)
from .engine.hookspecs import PLUGIN_API_VERSION, hookimpl
from .engine.options import Option
from .engine.specs import (
    ClassifierSpec,
    CommandSpec,
    GuidanceSpec,
    KernelSpec,
    ModelSpec,
    Paradigm,
    SamplerSpec,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .engine.guidance import BranchOutputs, BranchRequest, GuidanceContext, GuidancePolicy, StepInfo
    from .engine.model import GenerativeModel
    from .engine.pipeline import LoadOptions, Pipeline
    from .engine.progress import CancelToken, ProgressEvent, RunContext
    from .engine.result import GenerationResult
    from .engine.sampling import SampleBatch, SampleOutput
    from .kernels.dispatch import Dispatcher

_LAZY = {
    "BranchOutputs": "genloom.engine.guidance",
    "BranchRequest": "genloom.engine.guidance",
    "GuidanceContext": "genloom.engine.guidance",
    "Dispatcher": "genloom.kernels.dispatch",
    "GuidancePolicy": "genloom.engine.guidance",
    "StepInfo": "genloom.engine.guidance",
    "GenerativeModel": "genloom.engine.model",
    "Pipeline": "genloom.engine.pipeline",
    "LoadOptions": "genloom.engine.pipeline",
    "CancelToken": "genloom.engine.progress",
    "ProgressEvent": "genloom.engine.progress",
    "RunContext": "genloom.engine.progress",
    "GenerationResult": "genloom.engine.result",
    "SampleBatch": "genloom.engine.sampling",
    "SampleOutput": "genloom.engine.sampling",
    "read_state_dict": "genloom.engine.weights",
    "check_state_dict": "genloom.engine.weights",
    "build_and_load": "genloom.engine.weights",
    "save_state_dict": "genloom.engine.weights",
}


__getattr__ = lazy_getattr("genloom", _LAZY)


def load(
    name: str,
    weights: str | os.PathLike[str] | None = None,
    device: Any = None,
    dtype: Any = None,
    config: Any = None,
    **kwargs: Any,
) -> Pipeline:
    """Load model ``name`` (see ``genloom models``) through the default engine; see :meth:`Engine.load`."""
    return default_engine().load(name, weights=weights, device=device, dtype=dtype, config=config, **kwargs)


def reproduce(manifest: Any, **overrides: Any) -> GenerationResult:
    """Re-run a generation from its manifest; see :meth:`Engine.reproduce`."""
    return default_engine().reproduce(manifest, **overrides)


__all__ = [
    "BranchOutputs", "BranchRequest", "Dispatcher", "GuidanceContext", "GuidancePolicy", "StepInfo",
    "CancelToken", "ClassifierSpec", "CommandSpec", "DeviceError", "Engine", "GenerationCancelled",
    "GenerationResult", "GenerativeModel", "GenloomError", "GuidanceSpec", "InvalidRequest", "KernelSpec",
    "LoadOptions", "ModelNotFound", "ModelSpec", "NotRegistered", "Option", "PLUGIN_API_VERSION", "Paradigm",
    "Pipeline",
    "PluginError", "ProgressEvent", "RunContext", "SampleBatch", "SampleOutput", "SamplerSpec", "UnsafeCheckpoint",
    "WeightsError", "WeightsMismatch", "__version__", "build_and_load", "check_state_dict", "read_state_dict",
    "save_state_dict", "default_engine", "hookimpl", "load", "reproduce",
    "reset_default_engine",
]
