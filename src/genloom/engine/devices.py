"""Device and dtype choice, through accelerate so multi-process launches pick their own device."""

from __future__ import annotations

from typing import Any

import torch

from .errors import DeviceError

_DTYPES = {
    "fp32": torch.float32, "float32": torch.float32, "float": torch.float32,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}


def process_state() -> Any:
    """accelerate's process state. Under a multi-process launch (``accelerate launch --multi_gpu`` or
    ``torchrun``) on a machine without CUDA it is made with ``cpu=True``, which is what joins the processes
    through gloo; otherwise accelerate decides (NCCL on GPUs, a lone process elsewhere)."""
    import os

    from accelerate import PartialState

    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return PartialState(cpu=several and not torch.cuda.is_available())


def resolve_device(device: Any = None) -> torch.device:
    """``None``/``"auto"`` → the device accelerate assigns this process (CUDA, MPS, else CPU)."""
    if device is None or device == "auto":
        return torch.device(process_state().device)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"Unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device={device!r} asked for CUDA, but no CUDA GPU is available here; use device='cpu'.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible.")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError(f"device={device!r} asked for Apple MPS, which is not available here; use device='cpu'.")
    if dev.type not in {"cpu", "cuda", "mps"}:
        raise DeviceError(f"device={device!r}: genloom runs on 'cpu', 'cuda' and 'mps'.")
    return dev


def resolve_dtype(dtype: Any = None, device: torch.device | None = None) -> torch.dtype:
    """``None``/``"auto"`` → float32 (exact everywhere); fp16/bf16 only when asked for."""
    if dtype is None or dtype == "auto":
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            raise DeviceError(f"dtype={dtype} is not supported; use float32, float16 or bfloat16.")
        return dtype
    if isinstance(dtype, str) and dtype.lower() in _DTYPES:
        return _DTYPES[dtype.lower()]
    raise DeviceError(f"Unknown dtype {dtype!r}; use 'fp32', 'fp16' or 'bf16' (or a torch.dtype).")
