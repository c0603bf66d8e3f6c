"""Adaptive Guidance's similarity along full-CFG trajectories, in each space AG can measure it (ε, x̂0, x̂0 with each
channel's spatial mean removed): mean and minimum over samples at every step, and the mean NFE a threshold γ̄
would give (CFG until a sample's similarity first exceeds γ̄). AG assumes the similarity starts low and rises;
this shows where it does, and which γ̄ saves what, before a 500-sample table is run. Runs AG with γ̄ = 1 (CFG
throughout) and reads the policy's telemetry.

    python benchmarks/ag_similarity.py --model lamamba --weights W --vae V -L 'noise_schedule={...}' \\
        --sampler ddim --steps 25 --scale 3 [--n 50] [--thresholds 0.98 0.99 0.995]
    smoke mode (CI): --model var-shapes --n 2

On next-scale models it also prints two measures of how far the token distributions of the two branches are
apart, per scale (1 − total variation and the Bhattacharyya coefficient, the alternatives §2.6 of the spec names),
read from a constant-CFG run with the same seeds.
"""

from __future__ import annotations

import argparse

from _models import add_model_arguments, load_model

SPACES = ("eps", "x0", "x0-centred")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--sampler", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--scale", type=float, default=3.0)
    parser.add_argument("--n", type=int, default=50, help="samples (labels i mod 10, seeds 0…)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.98, 0.99, 0.995, 0.999])
    args = parser.parse_args()

    import torch

    from genloom.engine.specs import Paradigm

    pipe = load_model(args)
    # next-scale models measure one space (tokens); diffusion models each of SPACES
    spaces = SPACES if pipe.spec.paradigm is Paradigm.DIFFUSION else SPACES[:1]
    traces = {}
    for space in spaces:
        res = pipe(labels=[i % 10 for i in range(args.n)], seed=0, output_type="pt", sampler=args.sampler,
                   steps=args.steps, guidance="adaptive", guidance_scale=args.scale, threshold=1.0, similarity=space)
        reports = res.telemetry["guidance"]
        label = reports[0]["similarity_space"]
        traces[label] = torch.cat([torch.tensor([[float("nan") if v is None else v for v in row]
                                                 for row in r["similarity"]], dtype=torch.float64)
                                   for r in reports], dim=1)  # steps × samples (γ̄ = 1: no sample switches)
    print(f"{pipe.spec.name}: {args.n} samples, CFG w = {args.scale:g}; per step: mean (min) similarity")
    print("| step | " + " | ".join(traces) + " |")
    print("|---|" + "---|" * len(traces))
    steps = next(iter(traces.values())).shape[0]
    for i in range(steps):
        print(f"| {i} | " + " | ".join(f"{float(t[i].mean()):.4f} ({float(t[i].min()):.4f})" for t in traces.values())
              + " |")
    if pipe.spec.paradigm is Paradigm.NEXT_SCALE:
        _print_token_distances(pipe, args)
    print()
    print(f"mean NFE per image if AG switched at the first step above γ̄ (CFG throughout: {2 * steps})")
    print("| γ̄ | " + " | ".join(traces) + " |")
    print("|---|" + "---|" * len(traces))
    for g in args.thresholds:
        cells = []
        for t in traces.values():
            above = t > g
            first = torch.where(above.any(0), above.float().argmax(0), torch.full((t.shape[1],), steps - 1))
            cells.append(f"{float((steps + first + 1).float().mean()):.2f}")
        print(f"| {g:g} | " + " | ".join(cells) + " |")


def _print_token_distances(pipe, args: argparse.Namespace) -> None:
    """Per scale, mean (min) over samples of 1 − TV and of the Bhattacharyya coefficient between the conditional
    and unconditional token distributions, along constant-CFG trajectories (the seeds and labels above)."""
    import torch

    from genloom.engine.seeding import ImageRNG
    from genloom.plugins.guidance.cfg import CFG
    from genloom.samplers.next_scale import sample_next_scale

    per_scale: list[torch.Tensor] = []

    class MeasuredCFG(CFG):
        def combine(self, info, outputs, state):  # type: ignore[no-untyped-def]
            pc, pu = outputs["cond"].double().softmax(-1), outputs["uncond"].double().softmax(-1)
            tv = 0.5 * (pc - pu).abs().sum(-1).flatten(1).mean(1)
            bc = (pc * pu).sqrt().sum(-1).flatten(1).mean(1)
            per_scale.append(torch.stack([1 - tv, bc]))
            return super().combine(info, outputs, state)

    labels = torch.tensor([i % 10 for i in range(args.n)])
    sample_next_scale(pipe.model, labels, ImageRNG(range(args.n)),
                      guidance=MeasuredCFG(scale=args.scale, schedule="constant"))
    print()
    print("| scale | 1 − TV | Bhattacharyya |")
    print("|---|---|---|")
    for k, m in enumerate(per_scale):
        print(f"| {k} | " + " | ".join(f"{float(v.mean()):.4f} ({float(v.min()):.4f})" for v in m) + " |")


if __name__ == "__main__":
    main()
