"""Quality of an embedded shapes model: class accuracy and FD (reference classifier, shapes test split) of
generated samples at several guidance scales and samplers. For VAR also the same metrics on VQVAE
reconstructions of real test images (an upper bound the transformer cannot beat). Optionally saves an image grid.

    python benchmarks/shapes_quality.py --model var-shapes [--per-class 50] [--scales 1 2 3 4] [--top-k 0]
        [--schedule constant] [--seed 0]
    python benchmarks/shapes_quality.py --model dimr-shapes --samplers dpm++2m ddim --steps 25 --scales 1 3
    options: [--grid docs/<model>_grid.png] [--weights W [--vae V]] (a checkpoint instead of the embedded asset)
"""

from __future__ import annotations

import argparse
import time

import torch

import genloom
from genloom.data import load_split
from genloom.data.grid import save_grid
from genloom.eval import evaluate

HEADER = f"{'set':<34} {'accuracy':>8} {'FD':>9} {'FD mean ± std':>18} {'precision':>9} {'recall':>7} {'s/img':>7}"


def row(name: str, r, per_image: float | None) -> str:  # noqa: ANN001
    t = f"{per_image:>7.4f}" if per_image is not None else f"{'-':>7}"
    return (f"{name:<34} {r.accuracy:>8.4f} {r.fd:>9.4f} {r.fd_mean:>9.4f} ± {r.fd_std:<6.4f}"
            f"{r.precision:>9.4f} {r.recall:>7.4f} {t}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="var-shapes")
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 2.0, 3.0, 4.0])
    parser.add_argument("--samplers", nargs="+", default=[None])
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--top-k", type=int, default=None, help="next-scale models only")
    parser.add_argument("--schedule", default=None, help="CFG schedule (constant, linear, ...); default: the model's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", default=None)
    parser.add_argument("--weights", default=None, help="a checkpoint instead of the embedded default")
    parser.add_argument("--vae", default=None, help="its VQVAE checkpoint (VAR)")
    args = parser.parse_args()
    name = args.model
    if name not in genloom.default_engine().models:  # trained but not yet registered: the generic loader
        name = name.split("-")[0]
    extra = {"vae": args.vae} if args.vae else {}
    pipe = genloom.load(name, weights=args.weights, **extra)
    n = 10 * args.per_class
    real, labels = load_split("test", n, start=10_000)
    print(HEADER)
    vae = getattr(pipe.model, "vae", None)
    if hasattr(vae, "img_to_indices"):
        with torch.inference_mode():
            recon = vae.indices_to_img(vae.img_to_indices(real))[0]
        print(row("VQVAE reconstructions", evaluate(recon, labels.numpy(), num_reference=5000, subsets=5), None))
    wanted = [i % 10 for i in range(n)]
    sampler_kw = {"top_k": args.top_k} if args.top_k is not None else {}
    last = None
    for sampler in args.samplers:
        for w in args.scales:
            t0 = time.perf_counter()
            kw = {"guidance": "none"} if w == 1.0 else {"guidance": "cfg", "guidance_scale": w}
            if args.schedule and w != 1.0:
                kw["schedule"] = args.schedule
            res = pipe(labels=wanted, seed=args.seed, output_type="pt", batch_size=100, sampler=sampler,
                       steps=args.steps, **kw, **sampler_kw)
            per_image = (time.perf_counter() - t0) / n
            r = evaluate(res.images * 2 - 1, wanted, num_reference=5000, subsets=5)
            label = ("no guidance" if w == 1.0 else f"CFG w={w:g}") + (f", {sampler}" if sampler else "")
            if args.schedule and w != 1.0:
                label += f" {args.schedule}"
            if args.steps:
                label += f", {args.steps} steps"
            print(row(label, r, per_image))
            last = res
    if args.grid and last is not None:
        save_grid(last.images[:60] * 2 - 1, args.grid, columns=10, zoom=3)
        print(f"grid of the last run's first 60 (columns = classes) saved to {args.grid}")


if __name__ == "__main__":
    main()
