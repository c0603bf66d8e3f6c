"""Small helpers shared by the in-repo trainers of the embedded defaults."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .engine.errors import InvalidRequest
from .engine.outputs import ensure_writable_folder
from .engine.weights import read_metadata, read_state_dict, save_state_dict


def dihedral_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random quarter turn, then a random horizontal flip: every shapes class is closed under them."""
    x = torch.rot90(x, int(torch.randint(4, (1,), generator=gen)), dims=(2, 3))
    return x.flip(3) if bool(torch.randint(2, (1,), generator=gen)) else x


def cosine_warmup(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up, then a cosine decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def random_batch(images: torch.Tensor, batch_size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of a random batch (with replacement) and those images, augmented; draws from ``gen`` in that order."""
    pick = torch.randint(len(images), (batch_size,), generator=gen)
    return pick, dihedral_augment(images[pick], gen)


def set_learning_rate(opt: torch.optim.Optimizer, lr: float) -> None:
    """Every group at ``lr`` times its ``mult`` (1 where it has none: see :func:`with_label_table_group`)."""
    for group in opt.param_groups:
        group["lr"] = lr * group.get("mult", 1.0)


def with_label_table_group(net: torch.nn.Module, table: list[torch.nn.Parameter], lr: float, mult: float,
                           **table_options: Any) -> Any:
    """``net``'s parameters for an optimiser, with the label ``table`` in a group of its own at ``mult`` × ``lr``
    (the label's leverage; ``table_options`` e.g. its weight decay) — one plain list when ``mult`` is 1, the layout
    older training states hold, so that they resume unchanged."""
    if mult == 1.0:
        return list(net.parameters())
    ids = {id(p) for p in table}
    rest = [p for p in net.parameters() if id(p) not in ids]
    return [{"params": rest, "mult": 1.0}, {"params": table, "lr": lr * mult, "mult": mult, **table_options}]


def wrong_labels(labels: torch.Tensor, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """For each label another class, uniformly (the label diagnostics' "wrong label"), drawn from ``gen``."""
    shift = 1 + torch.randint(num_classes - 1, labels.shape, generator=gen).to(labels.device)
    return (labels + shift) % num_classes


@torch.no_grad()
def update_ema(ema: torch.nn.Module, net: torch.nn.Module, decay: float, step: int) -> None:
    """One step of the weights' exponential moving average, with the usual warm-up: the decay is
    ``min(decay, (1 + step) / (10 + step))``, so early steps do not keep the initial weights for long."""
    d = min(decay, (1 + step) / (10 + step))
    for pe, p in zip(ema.parameters(), net.parameters()):
        pe.lerp_(p, 1 - d)


def load_initial_weights(net: torch.nn.Module, path: str | Path, what: str) -> None:
    """``--init``: load ``path`` into ``net`` strictly; weights of another configuration are a typed error naming
    the option, the network ``what`` and the first mismatch."""
    try:
        net.load_state_dict(read_state_dict(path), strict=True)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        first = lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines[0]
        raise InvalidRequest(f"--init {str(path)!r} does not fit {what}: {first}") from None


def divided_width(width: int, divisor: int, heads: int = 1) -> int:
    """``width / divisor`` for ``--width-divisor``: a typed error unless it is a whole number of ``heads`` heads."""
    if width % divisor or (width // divisor) % heads:
        raise InvalidRequest(f"--width-divisor {divisor} does not divide the width {width} into {heads} whole "
                             f"head(s); pick a divisor of {width} that keeps it a multiple of {heads}.")
    return width // divisor


def quiet_threads(threads: int) -> None:
    """Set torch's thread count; OpenMP waits passively so a busy neighbour does not slow each step 10×.

    The wait policy is read when OpenMP starts, so this must run before torch does its first parallel work."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    torch.set_num_threads(threads)


def check_settings(settings: object, positive: tuple[str, ...] = (), fractions: tuple[str, ...] = (),
                   files: tuple[str, ...] = ()) -> None:
    """Typed errors, before any work starts, naming the first setting that is wrong: ``positive`` ones must be
    > 0, ``fractions`` in [0, 1), ``files`` (when set) must exist."""
    for name in positive:
        value = getattr(settings, name)
        if not value > 0:
            raise InvalidRequest(f"--{name.replace('_', '-')} must be > 0, got {value}.")
    for name in fractions:
        value = getattr(settings, name)
        if not 0 <= value < 1:
            raise InvalidRequest(f"--{name.replace('_', '-')} must be in [0, 1), got {value}.")
    for name in files:
        value = getattr(settings, name)
        if value and not Path(value).is_file():
            raise InvalidRequest(f"--{name.replace('_', '-')} {value!r} does not exist.")


def check_output_folder(out_dir: str | Path, finals: tuple[str, ...] = (), resuming: bool = False) -> Path:
    """Create ``out_dir`` and prove it is writable before any training starts. A fresh run (not ``resuming``)
    refuses a folder that already holds one of its ``finals``: trained weights are never overwritten silently."""
    out = ensure_writable_folder(out_dir, "output folder (--out)")
    taken = [name for name in finals if (out / name).exists()]
    if taken and not resuming:
        raise InvalidRequest(f"{str(out)!r} already holds {', '.join(taken)} from an earlier run; pick another --out, "
                             f"move the file away, or continue that run with --resume.")
    return out


Optimizers = torch.optim.Optimizer | Mapping[str, torch.optim.Optimizer]


def _named(optimizers: Optimizers) -> dict[str, torch.optim.Optimizer]:
    """One optimizer is stored as ``optim.*`` (the single-optimizer trainers' layout), several as ``optim.NAME.*``."""
    if isinstance(optimizers, torch.optim.Optimizer):
        return {"optim": optimizers}
    return {f"optim.{name}": opt for name, opt in optimizers.items()}


#: the ``kind`` metadata of a resumable training state
STATE_KIND = "genloom-train-state"


def save_training_state(path: Path, modules: Mapping[str, torch.nn.Module], optimizer: Optimizers,
                        gen: torch.Generator, step: int, settings: Mapping[str, Any],
                        elapsed: float | None = None) -> Path:
    """Everything a trainer needs to continue bit-identically, as safetensors (no pickle): the modules'
    tensors, the optimizers' per-parameter state, the data generator's state, the step and the settings (and the
    training seconds spent so far, :func:`elapsed_seconds`)."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        tensors.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    for prefix, opt in _named(optimizer).items():
        for i, state in opt.state_dict()["state"].items():
            tensors.update({f"{prefix}.{i}.{k}": torch.as_tensor(v) for k, v in state.items()})
    tensors["rng"] = gen.get_state()
    meta = {"step": str(step), "settings": json.dumps(dict(settings), sort_keys=True), "kind": STATE_KIND}
    if elapsed is not None:
        meta["elapsed_seconds"] = f"{elapsed:.1f}"
    tmp = path.with_name(path.name + ".partial")
    save_state_dict(tensors, tmp, metadata=meta)
    os.replace(tmp, path)  # a kill mid-write never leaves a truncated state behind
    return path


def recorded_settings(path: str | Path) -> dict[str, Any] | None:
    """The settings a training state records (None when ``path`` is no genloom training state)."""
    meta = read_metadata(path)
    return json.loads(meta["settings"]) if meta.get("kind") == STATE_KIND else None


def check_training_state(path: str | Path, settings: Mapping[str, Any], same: tuple[str, ...],
                         since: Mapping[str, Any] | None = None) -> int:
    """The step a ``--resume`` state continues from, after checking (from its metadata only, before any work)
    that it is a training state and that the ``same`` settings match (``since``: settings added after older states
    were written, with the value those ran with)."""
    meta = read_metadata(path)
    if meta.get("kind") != STATE_KIND:
        raise InvalidRequest(f"{str(path)!r} is not a genloom training state; --resume takes the "
                             f"*_state.safetensors file a trainer writes next to its checkpoints.")
    saved = {**(since or {}), **json.loads(meta["settings"])}
    differ = [k for k in same if saved.get(k) != settings.get(k)]
    if differ:
        shown = ", ".join(f"{k}: {saved.get(k)!r} there, {settings.get(k)!r} now" for k in differ)
        raise InvalidRequest(f"The --resume state {str(path)!r} is from another configuration ({shown}); "
                             f"resume with the same settings or start afresh.")
    return int(meta["step"])


def load_training_state(path: str | Path, modules: Mapping[str, torch.nn.Module], optimizer: Optimizers,
                        gen: torch.Generator, settings: Mapping[str, Any], same: tuple[str, ...],
                        since: Mapping[str, Any] | None = None) -> int:
    """Restore what :func:`save_training_state` wrote and return the step to continue from. ``same`` names the
    settings that must match (the configuration); others (e.g. the total steps) may change between legs."""
    step = check_training_state(path, settings, same, since)
    tensors = read_state_dict(path)
    for name, module in modules.items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True)
    for prefix, opt in _named(optimizer).items():
        opt_state = opt.state_dict()
        per_param: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith(prefix + "."):
                index, field = key[len(prefix) + 1:].split(".", 1)
                if index.isdigit():
                    per_param.setdefault(int(index), {})[field] = value
        opt_state["state"] = per_param
        opt.load_state_dict(opt_state)
    gen.set_state(tensors["rng"])
    return step


def elapsed_seconds(path: str | Path) -> float:
    """The training seconds a state records (0 when it records none)."""
    return float(read_metadata(path).get("elapsed_seconds", 0))
