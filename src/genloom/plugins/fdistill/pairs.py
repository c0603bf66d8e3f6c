"""Teacher pairs for the optional regression loss (DMD, Yin et al. 2024 — not part of f-distill): noises drawn once
and the teacher's samples from them, through the engine's pipeline with the teacher's default sampler and the
guidance the student bakes in. The student regresses ``G(z)`` onto the teacher's sample of the same ``z``: a
per-sample anchor to the teacher's own noise-to-image map, which distribution matching alone does not give.

The pairs are written once beside the run's files (``<student>_pairs<N>.safetensors``) and read back by a resumed
leg, so a resume stays bit-identical and does not pay for them twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ...engine import weights
from ...engine.errors import InvalidRequest
from .student import guidance_request

PAIRS_KEY = "genloom_fdistill_pairs"
SEED_OFFSET = 1_000_003  # the pairs' noise is a stream of its own, apart from the run's draws
BATCH = 100


def pairs_path(out: Path, stem: str, count: int) -> Path:
    return out / f"{stem}_pairs{count}.safetensors"


def teacher_pairs(engine: Any, teacher: Any, count: int, seed: int, path: Path,
                  log: Callable[[str], None]) -> dict[str, torch.Tensor]:
    """``{"z", "labels", "x0"}`` on the CPU: ``count`` noises of the teacher's latent shape, labels ``i % classes``
    and the teacher's samples (its input space) — read from ``path`` when it holds this very set, else sampled
    and written there. A file there of another teacher, guidance or seed is refused, never overwritten."""
    about = check_pairs_file(path, teacher, count, seed)
    if path.exists():
        log(f"reading {count} teacher pairs from {path}")
        return weights.read_state_dict(path)
    from ...engine.pipeline import Pipeline

    model = teacher.model
    gen = torch.Generator().manual_seed(seed + SEED_OFFSET)
    z = torch.randn((count, *model.latent_shape), generator=gen)
    labels = torch.arange(count) % max(model.spec.num_classes, 1)
    pipe = Pipeline(engine, model)
    log(f"sampling {count} teacher pairs ({', '.join(f'{k}={v}' for k, v in about['guidance'].items())})…")
    parts = []
    for i in range(0, count, BATCH):
        rows = slice(i, i + BATCH)
        parts.append(pipe(labels=labels[rows].tolist() if model.spec.num_classes else None,
                          num_images=len(z[rows]), latents=z[rows], output_type="latent", seed=0,
                          **about["guidance"]).images.detach().float().cpu())
        log(f"teacher pairs {min(i + BATCH, count)}/{count}")
    pairs = {"z": z, "labels": labels, "x0": torch.cat(parts)}
    weights.save_state_dict(pairs, path, metadata={PAIRS_KEY: json.dumps(about, sort_keys=True)})
    return pairs


def check_pairs_file(path: Path, teacher: Any, count: int, seed: int) -> dict[str, Any]:
    """What the pairs of this run are (teacher, guidance, count, seed); a file at ``path`` that holds others is
    refused (called before any work starts, and again before the pairs are read)."""
    guidance = guidance_request(teacher.guidance_scale, teacher.baked_guide())  # what the student bakes in
    about = {"teacher_sha256": teacher.sha256, "guidance": guidance, "count": count, "seed": seed}
    if path.exists():
        recorded = json.loads(weights.read_metadata(path).get(PAIRS_KEY, "null") or "null")
        if recorded != about:
            raise InvalidRequest(f"{path} holds teacher pairs of another run ({recorded}); move it away or pass "
                                 f"another --out.")
    return about
