"""Finding, reading and checking checkpoints, safely.

* ``.safetensors`` is read with safetensors (no code can run);
* legacy ``.pth/.pt/.bin/.ckpt`` only through ``torch.load(weights_only=True)``: a pickle that needs arbitrary
  code is refused with :class:`UnsafeCheckpoint` and its code never runs;
* every file's sha256 goes into the run manifest;
* networks are built on the meta device and loaded with ``assign=True``, so a large model is never
  initialised twice (once randomly, once from the checkpoint).
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .errors import UnsafeCheckpoint, WeightsError, WeightsMismatch

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
ASSET_PREFIX = "asset:"
HUB_PREFIX = "hf://"
MAX_LISTED_DIFFERENCES = 10


@dataclass(frozen=True)
class ResolvedWeights:
    """A checkpoint on local disk and where it came from (as the user named it)."""

    path: Path
    source: str

    @property
    def sha256(self) -> str:
        return sha256_file(self.path)


def asset_path(name: str) -> Path:
    """The path of an embedded asset shipped inside the package."""
    path = Path(str(resources.files("genloom") / "assets" / name))
    if not path.is_file():
        raise WeightsError(f"Embedded asset {name!r} is missing from {path.parent}; reinstall genloom.")
    return path


def resolve(reference: str | os.PathLike[str]) -> ResolvedWeights:
    """Turn ``asset:<name>``, ``hf://owner/repo/file[@revision]`` or a local file/folder into a local file."""
    ref = os.fspath(reference)
    if ref.startswith(ASSET_PREFIX):
        return ResolvedWeights(asset_path(ref[len(ASSET_PREFIX):]), ref)
    if ref.startswith(HUB_PREFIX):
        return ResolvedWeights(_download_from_hub(ref), ref)
    path = Path(ref).expanduser()
    if path.is_dir():
        return ResolvedWeights(_pick_in_folder(path), ref)
    if not path.exists():
        raise WeightsError(f"Checkpoint {ref!r} not found (resolved to {path.resolve()}); check the path.")
    return ResolvedWeights(path, ref)


def _pick_in_folder(folder: Path) -> Path:
    candidates = sorted(p for p in folder.iterdir() if p.suffix in SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES)
    safes = [p for p in candidates if p.suffix in SAFETENSORS_SUFFIXES]
    pool = safes or candidates
    if len(pool) == 1:
        return pool[0]
    if not pool:
        raise WeightsError(f"Folder {folder} holds no .safetensors or .pth checkpoint.")
    raise WeightsError(
        f"Folder {folder} holds several checkpoints ({', '.join(p.name for p in pool)}); pass the file itself."
    )


def _download_from_hub(ref: str) -> Path:
    """``hf://owner/repo/path/in/repo@revision``; respects HF_HUB_OFFLINE and the HF cache."""
    body = ref[len(HUB_PREFIX):]
    body, _, revision = body.partition("@")
    parts = body.split("/")
    if len(parts) < 3:
        raise WeightsError(f"Hub reference {ref!r} must look like hf://owner/repo/file.safetensors[@revision].")
    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:  # pragma: no cover - a dependency
        raise WeightsError("huggingface_hub is needed for hf:// weights; pip install huggingface_hub.") from None
    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision or None))
    except Exception as exc:  # noqa: BLE001 - offline, missing file, auth: all the same to the user
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
        hint = (
            " HF_HUB_OFFLINE is set and the file is not in the local cache: download it once online, "
            "or pass a local path with weights=."
            if offline
            else " Check the repository, the file name and your network, or pass a local path with weights=."
        )
        raise WeightsError(f"Could not fetch {ref!r} from the hub ({type(exc).__name__}: {exc}).{hint}") from exc


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Streaming sha256, memoised per (path, size, mtime) so repeated loads do not re-hash."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _HASH_CACHE[key] = h.hexdigest()
    return _HASH_CACHE[key]


def read_state_dict(path: str | os.PathLike[str], unwrap: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Read a checkpoint into a flat ``name → tensor`` dict, without ever running code from the file.

    ``unwrap`` names nested keys to descend into (e.g. ``("ema", "model")``) for checkpoints that store
    the state dict inside a training-state dictionary.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"Checkpoint {str(p)!r} not found; check the path.")
    if p.suffix in SAFETENSORS_SUFFIXES:
        obj: Any = _read_safetensors(p)
    elif p.suffix in PICKLE_SUFFIXES:
        obj = _read_pickle(p)
    else:
        raise WeightsError(
            f"Checkpoint {p.name!r} has an unknown format; genloom reads .safetensors, or legacy "
            f"{'/'.join(PICKLE_SUFFIXES)} through torch.load(weights_only=True)."
        )
    for key in unwrap:
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise WeightsError(f"Checkpoint {p.name!r} holds a {type(obj).__name__}, not a state dict of tensors.")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(
            f"Checkpoint {p.name!r} is not a flat state dict: {len(bad)} entries are not tensors "
            f"(first: {bad[:5]}). It may be a training state; pass the model's weights only."
        )
    return dict(obj)


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(
            f"Checkpoint {path.name!r} is corrupted or truncated ({type(exc).__name__}: {exc}); "
            f"download or convert it again."
        ) from exc


def _read_pickle(path: Path) -> Any:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpoint(
            f"Refused to load {path.name!r}: it is a pickle that needs arbitrary code to unpickle "
            f"({str(exc).splitlines()[0][:200]}). genloom only loads legacy checkpoints with "
            f"torch.load(weights_only=True) and never runs code from a file. If you trust its origin, re-save its "
            f"state dict (tensors only) with safetensors, or ask its publisher for a .safetensors file."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise WeightsError(
            f"Checkpoint {path.name!r} could not be read as a torch file ({type(exc).__name__}: {exc}); "
            f"it may be truncated or not a checkpoint."
        ) from exc


def expected_shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """Names and shapes a module's ``load_state_dict`` expects (works on meta modules)."""
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def check_state_dict(
    expected: Mapping[str, tuple[int, ...]], state_dict: Mapping[str, torch.Tensor], what: str = "checkpoint"
) -> None:
    """Raise :class:`WeightsMismatch` listing the first missing, unexpected and mis-shaped keys."""
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [
        (k, tuple(state_dict[k].shape), tuple(shape))
        for k, shape in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(shape)
    ]
    if not (missing or unexpected or shapes):
        return
    n = MAX_LISTED_DIFFERENCES
    lines = [f"The {what} does not match the network:"]
    if missing:
        lines.append(f"  {len(missing)} missing key(s): {', '.join(missing[:n])}{' …' if len(missing) > n else ''}")
    if unexpected:
        lines.append(
            f"  {len(unexpected)} unexpected key(s): {', '.join(unexpected[:n])}{' …' if len(unexpected) > n else ''}"
        )
    if shapes:
        shown = "; ".join(f"{k}: checkpoint {list(a)} vs network {list(b)}" for k, a, b in shapes[:n])
        lines.append(f"  {len(shapes)} shape mismatch(es): {shown}{' …' if len(shapes) > n else ''}")
    lines.append("  Check that the weights belong to this model and configuration (pass config= to genloom.load).")
    raise WeightsMismatch("\n".join(lines), missing, unexpected, shapes)


def build_and_load(
    builder: Callable[[], torch.nn.Module],
    state_dict: Mapping[str, torch.Tensor],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    what: str = "checkpoint",
) -> torch.nn.Module:
    """Build a network on the meta device, check the checkpoint strictly, then load it with ``assign=True``."""
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):
        module = builder()
    check_state_dict(expected_shapes(module), state_dict, what)
    module.load_state_dict(_integer_buffers_kept(module, state_dict, what), strict=True, assign=True)
    still_meta = [n for n, t in list(module.named_parameters()) + list(module.named_buffers()) if t.is_meta]
    if still_meta:
        raise WeightsError(f"Parameters left uninitialised after loading: {still_meta[:MAX_LISTED_DIFFERENCES]}.")
    same = dtype is None or all(p.dtype == dtype for p in module.parameters() if p.is_floating_point())
    module.to(device=device) if same else module.to(device=device, dtype=dtype)  # a no-op cast warns in diffusers
    return module.eval().requires_grad_(False)


def save_state_dict(state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike[str],
                    metadata: Mapping[str, str] | None = None) -> Path:
    """Write a state dict as safetensors (contiguous, de-aliased copies)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata=dict(metadata or {}))
    return out


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The string metadata of a safetensors file (empty for other formats): self-describing assets keep their
    configuration there."""
    p = Path(path)
    if p.suffix not in SAFETENSORS_SUFFIXES:
        return {}
    from safetensors import safe_open

    try:
        with safe_open(str(p), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - any read failure is a corrupt file to the user
        raise WeightsError(f"Checkpoint {p.name!r} is corrupted or truncated ({type(exc).__name__}: {exc}).") from exc


def _integer_buffers_kept(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor],
                          what: str) -> dict[str, torch.Tensor]:
    """``assign=True`` takes the checkpoint's dtype: an index buffer stored as floats (a converted or averaged
    checkpoint) would reach an embedding lookup as floats, so whole-valued ones get the network's integer dtype back
    and others are refused here, at load, naming the key."""
    out = dict(state_dict)
    for name, own in module.state_dict().items():
        given = out.get(name)
        if given is None or own.is_floating_point() or not given.is_floating_point():
            continue
        if not torch.equal(given, given.round()):
            raise WeightsError(f"The {what} holds {name!r} as {given.dtype} with fractional values where the network "
                               f"keeps {own.dtype} indices; it was not written by this network.")
        out[name] = given.to(own.dtype)
    return out


def float32_state(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating-point tensors as float32 (half-precision checkpoints load into float32 networks), others as-is."""
    return {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
