"""Class accuracy of guided samples scored by two classifiers: shapes-cnn (the one GFCG consults) and an
independently trained one (`genloom train classifier --seed 1`), so a policy that uses the scoring classifier is
not graded by its own judge alone.

    python benchmarks/guidance_crosscheck.py --other checkpoints/shapes_classifier_seed1.safetensors --n 200
        [--model lamamba --weights checkpoints/lamamba_shapes.safetensors] (the LaMamba teacher by default)
    smoke mode (CI): --other checkpoints/shapes_classifier_seed1.safetensors --n 10 --steps 2
"""

from __future__ import annotations

import argparse

import genloom
from genloom.diffusion_settings import SHAPES_NOISE
from genloom.eval import evaluate

ROWS = {"CFG w 3": {"guidance": "cfg", "guidance_scale": 3.0},
        "GFCG w_max 2": {"guidance": "gfcg", "guidance_scale": 2.0}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--other", required=True, help="the independent classifier's weights (shapes-cnn layout)")
    parser.add_argument("--weights", default="checkpoints/lamamba_shapes.safetensors")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pipe = genloom.load("lamamba", weights=args.weights, vae="asset:shapes_ae.safetensors", noise_schedule=SHAPES_NOISE)
    labels = [i % 10 for i in range(args.n)]
    print(f"{args.n} samples (seed {args.seed}+), DDIM {args.steps} steps; accuracy by shapes-cnn / by {args.other}")
    for name, kw in ROWS.items():
        res = pipe(labels=labels, seed=args.seed, sampler="ddim", steps=args.steps, output_type="pt", batch_size=100,
                   **kw)
        images = res.images * 2 - 1
        own = evaluate(images, labels, num_reference=100, subsets=1).accuracy
        other = evaluate(images, labels, classifier_weights=args.other, num_reference=100, subsets=1).accuracy
        print(f"| {name} | {own:.3f} | {other:.3f} |")


if __name__ == "__main__":
    main()
