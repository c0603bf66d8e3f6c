"""The kernel dispatcher: a network asks for an operation by name, the dispatcher picks its implementation.

Backends: ``torch`` (the exact reference: the official code's arithmetic), ``triton`` (the GPU kernel; on CPU
only under ``TRITON_INTERPRET=1``), ``auto`` (Triton on CUDA tensors when Triton imports and the call is
supported; otherwise the spec's fast PyTorch form, else the reference). The choice comes from the per-call
``backend=``, else the dispatcher's own, else ``GENLOOM_KERNELS``, else ``auto``. Networks receive a dispatcher
from their family's build context (``LoadOptions.kernels``), never by importing another family.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..engine.errors import DeviceError, InvalidRequest, NotRegistered, suggest
from ..engine.specs import KernelSpec

ENV = "GENLOOM_KERNELS"
BACKENDS = ("auto", "torch", "triton")


def check_backend(backend: str, where: str = "backend") -> str:
    if backend not in BACKENDS:
        raise InvalidRequest(f"Unknown kernel backend {backend!r} in {where}; use one of {list(BACKENDS)} "
                             f"(auto: Triton on CUDA, fast PyTorch forms elsewhere; torch: the exact references)."
                             f"{suggest(backend, BACKENDS)}")
    return backend


def backend_from_env() -> str:
    """``GENLOOM_KERNELS`` (default ``auto``), checked."""
    return check_backend(os.environ.get(ENV, "auto").strip().lower() or "auto", f"{ENV}")


def triton_status() -> str | None:
    """Why Triton cannot run here (None when it can: a CUDA device, or the CPU interpreter)."""
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed (pip install 'genloom[kernels]')"
    if os.environ.get("TRITON_INTERPRET") == "1":
        return None
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device (set TRITON_INTERPRET=1 to run the kernels in Triton's CPU interpreter)"
    return None


def _tensors(args: Iterable[Any], kwargs: Mapping[str, Any]) -> list[Any]:
    import torch

    return [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]


@dataclass(frozen=True)
class Choice:
    """What a call ran, and why (for ``genloom kernels`` and tests)."""

    backend: str
    implementation: Callable[..., Any]
    reason: str


class Dispatcher:
    """Name → implementation, per call. ``backend`` fixes the choice for everything this dispatcher runs."""

    def __init__(self, specs: Mapping[str, KernelSpec] | Iterable[KernelSpec], backend: str | None = None) -> None:
        items = specs.values() if isinstance(specs, Mapping) else specs
        self.specs = {s.name: s for s in items}
        self.backend = check_backend(backend) if backend is not None else None

    def spec(self, name: str) -> KernelSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise NotRegistered(f"No kernel named {name!r}; available: {sorted(self.specs)}."
                                f"{suggest(name, self.specs)}") from None

    def choose(self, name: str, *args: Any, backend: str | None = None, **kwargs: Any) -> Choice:
        spec = self.spec(name)
        wanted = check_backend(backend) if backend is not None else (self.backend or backend_from_env())
        if wanted == "torch":
            return Choice("torch", spec.reference, "forced: the exact reference")
        unavailable = self._triton_unavailable(spec, args, kwargs)
        if wanted == "triton":
            if unavailable:
                raise DeviceError(f"Kernel {name!r} cannot run on Triton: {unavailable}. Use GENLOOM_KERNELS=auto "
                                  f"(or backend='auto'), which falls back to PyTorch, or 'torch' for the reference.")
            return Choice("triton", spec.triton, "forced")  # type: ignore[arg-type]
        tensors = _tensors(args, kwargs)
        if not unavailable and tensors and all(t.is_cuda for t in tensors):
            return Choice("triton", spec.triton, "auto: CUDA tensors")  # type: ignore[arg-type]
        if spec.fast is not None:
            return Choice("torch-fast", spec.fast, f"auto: {unavailable or 'tensors not on CUDA'}")
        return Choice("torch", spec.reference, f"auto: {unavailable or 'tensors not on CUDA'}")

    def __call__(self, name: str, *args: Any, backend: str | None = None, **kwargs: Any) -> Any:
        return self.choose(name, *args, backend=backend, **kwargs).implementation(*args, **kwargs)

    @staticmethod
    def _triton_unavailable(spec: KernelSpec, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
        if spec.triton is None:
            return "it has no Triton implementation"
        status = triton_status()
        if status:
            return status
        return spec.supports(*args, **kwargs) if spec.supports is not None else None

    def report(self) -> list[tuple[str, str, str]]:
        """(kernel, backends present, what ``auto`` runs on this machine) for ``genloom kernels``."""
        status = triton_status()
        rows = []
        for name, spec in sorted(self.specs.items()):
            present = ["torch"] + (["torch-fast"] if spec.fast else []) + (["triton"] if spec.triton else [])
            if spec.triton is None:
                auto = "torch-fast" if spec.fast else "torch"
                why = "no Triton implementation"
            elif status:
                auto, why = ("torch-fast" if spec.fast else "torch"), status
            else:
                auto, why = "triton on CUDA tensors", "Triton available"
            rows.append((name, ", ".join(present), f"{auto} ({why})"))
        return rows


_DEFAULT: Dispatcher | None = None


def default_dispatcher() -> Dispatcher:
    """The built-in kernels, for networks built outside an engine (tests, conversions)."""
    global _DEFAULT
    if _DEFAULT is None:
        from . import BUILTIN_KERNELS

        _DEFAULT = Dispatcher(BUILTIN_KERNELS)
    return _DEFAULT
