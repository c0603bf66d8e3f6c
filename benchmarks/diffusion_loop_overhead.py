"""The engine's loop overhead in diffusion sampling: everything but the network and the scheduler.

Times one guided sampling run (CFG, both branches packed into one forward) and, inside it, the time spent in the
network (``model.denoise`` and the final decode) and in the diffusers scheduler (``set_timesteps``,
``scale_model_input``, ``step``). What is left — policy requests and combination, packing and scattering rows,
step bookkeeping, noise, progress — is the loop's overhead, reported as a share of the run.

    python benchmarks/diffusion_loop_overhead.py [--batch 16] [--steps 25] [--sampler dpm++2m] [--repeats 3]
    smoke mode (CI): --batch 2 --steps 2 --repeats 1
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch

from genloom.engine.progress import RunContext
from genloom.engine.sampling import SampleBatch
from genloom.engine.seeding import ImageRNG
from genloom.plugins.guidance.cfg import CFG
from genloom.samplers import diffusion


def timed(spent: dict, key: str, fn):  # noqa: ANN001, ANN201
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - t0
    return wrapper


def shapes_sized_model():  # noqa: ANN201
    """The DiMR the shapes trainer builds (32 px pixel space), random weights: only its cost matters here."""
    from genloom.engine.specs import ModelSpec, Paradigm
    from genloom.plugins.dimr.model import DiMRModel
    from genloom.plugins.dimr.network import DiMRNetwork
    from genloom.plugins.dimr.train import SHAPES_DIMR, SHAPES_SCHEDULE

    torch.manual_seed(0)
    spec = ModelSpec(name="dimr-shapes-sized", factory=None, paradigm=Paradigm.DIFFUSION, num_classes=10,
                     null_class=10, image_size=32)
    return DiMRModel(spec=spec, networks={"dimr": DiMRNetwork(SHAPES_DIMR).eval()}, config=SHAPES_DIMR,
                     noise_schedule=SHAPES_SCHEDULE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--sampler", default="dpm++2m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = shapes_sized_model()
    real_make = diffusion.make_scheduler
    spent: dict[str, float] = defaultdict(float)

    def make(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        sched = real_make(*a, **kw)
        for name in ("set_timesteps", "scale_model_input", "step"):
            setattr(sched, name, timed(spent, "scheduler", getattr(sched, name)))
        return sched

    diffusion.make_scheduler = make
    model.denoise = timed(spent, "network", model.denoise)  # type: ignore[method-assign]
    model.decode = timed(spent, "network", model.decode)  # type: ignore[method-assign]
    sampler = diffusion.DiffusionSampler(args.sampler)
    labels = torch.arange(args.batch) % 10
    rows = []
    for r in range(args.repeats + 1):
        spent.clear()
        batch = SampleBatch(labels=labels, rng=ImageRNG(list(range(args.batch))), steps=args.steps,
                            policy=CFG.create(3.0))
        t0 = time.perf_counter()
        with torch.inference_mode():
            sampler.sample(model, batch, RunContext())
        total = time.perf_counter() - t0
        if r:  # the first run warms up
            rows.append((total, spent["network"], spent["scheduler"]))
    params = sum(p.numel() for p in model.net.parameters()) / 1e6
    print(f"shapes-sized pixel DiMR ({params:.2f} M params, 32 px), batch {args.batch}, {args.steps} steps, "
          f"{args.sampler}, "
          f"CFG w=3 (packed 2×{args.batch} rows), {args.threads} threads")
    print(f"{'run':>4} {'total s':>9} {'network s':>10} {'scheduler s':>12} {'overhead s':>11} {'overhead %':>11}")
    for i, (total, net, sched) in enumerate(rows):
        over = total - net - sched
        print(f"{i + 1:>4} {total:>9.3f} {net:>10.3f} {sched:>12.3f} {over:>11.4f} {100 * over / total:>10.2f}%")
    median = sorted(100 * (t - n - s) / t for t, n, s in rows)[len(rows) // 2]
    print(f"median loop overhead: {median:.2f}% of step time")


if __name__ == "__main__":
    main()
