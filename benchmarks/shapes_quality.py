"""Quality of an embedded shapes model: class accuracy, FD, precision and recall (reference classifier, against
the shapes test split) and colour (mean saturation, hue-histogram TV distance to real images) of generated
samples, unguided and at guidance scales; the per-class accuracy of the last row; optionally an image grid. For
VAR also the same figures on VQVAE reconstructions of real test images (a bound the transformer cannot beat).

    python benchmarks/shapes_quality.py --model var-shapes [--per-class 50] [--scales 1 5] [--top-k 0] [--top-p 0.9]
        [--policy cfg] [--schedule constant] [-G stop=0.5 …: options of the guided rows' policy] [--seed 0]
    python benchmarks/shapes_quality.py --model dimr-shapes --samplers ddim --steps 25 --scales 1 3
    options: [--grid docs/<model>_grid.png] [--weights W [--vae V] [-L key=value ...]] (a checkpoint instead of the
    embedded asset); scale 1 means no guidance; the guided rows run the model's default policy (and, when no -G is
    given, its default options) unless --policy names another
    smoke mode (CI): --model var-shapes --per-class 1 --scales 1 --num-reference 50
"""

from __future__ import annotations

import argparse
import time

import torch
from _models import add_model_arguments, load_model

from genloom.data import load_split
from genloom.data.constants import CLASS_NAMES
from genloom.data.grid import save_grid
from genloom.engine.options import parse_key_values
from genloom.eval import colour_report, evaluate

HEADER = (f"{'set':<34} {'accuracy':>8} {'FD':>9} {'FD mean ± std':>18} {'precision':>9} {'recall':>7} "
          f"{'sat.':>5} {'hue TV':>6} {'NFE':>5} {'s/img':>7}")


def row(name: str, r, colour, nfe: float | None, per_image: float | None) -> str:  # noqa: ANN001
    t = f"{per_image:>7.4f}" if per_image is not None else f"{'-':>7}"
    n = f"{nfe:>5.1f}" if nfe is not None else f"{'-':>5}"
    return (f"{name:<34} {r.accuracy:>8.4f} {r.fd:>9.4f} {r.fd_mean:>9.4f} ± {r.fd_std:<6.4f}"
            f"{r.precision:>9.4f} {r.recall:>7.4f} {colour.mean_saturation:>5.1f} {colour.hue_tv:>6.3f} {n} {t}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 2.0, 3.0, 4.0])
    parser.add_argument("--samplers", nargs="+", default=[None])
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--top-k", type=int, default=None, help="next-scale models only")
    parser.add_argument("--top-p", type=float, default=None, help="next-scale models only: nucleus mass")
    parser.add_argument("--policy", default=None, help="guidance policy of the guided rows (e.g. cfg, "
                        "cfg+autoguidance); default: the model's")
    parser.add_argument("--schedule", default=None, help="CFG schedule (constant, linear, ...); default: the model's")
    parser.add_argument("-G", "--guidance-option", action="append", default=[],
                        help="an option KEY=VALUE of the guided rows' policy (e.g. stop=0.5: a step window; "
                             "autoguidance.scale=2 in a stack)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-reference", type=int, default=5000)
    parser.add_argument("--grid", default=None)
    args = parser.parse_args()
    pipe = load_model(args)
    policy = args.policy or pipe.spec.default_guidance
    guided_options = parse_key_values(args.guidance_option, "--guidance-option")
    if args.schedule:
        guided_options["schedule"] = args.schedule
    # the options a guided row runs with: the ones given, else the model's defaults for its default policy
    shown_options = guided_options or (
        pipe.spec.default_guidance_options if policy == pipe.spec.default_guidance else {})
    n = 10 * args.per_class
    real, labels = load_split("test", n, start=10_000)
    reference, _ = load_split("test", min(args.num_reference, 5000))
    kw_eval = dict(num_reference=args.num_reference, subsets=5 if n >= 50 else 1)
    print(f"{pipe.spec.name}: {n} samples (seed {args.seed}+), {args.num_reference} test images as reference")
    print(HEADER)
    vae = getattr(pipe.model, "vae", None)
    if hasattr(vae, "img_to_indices"):
        with torch.inference_mode():
            recon = vae.indices_to_img(vae.img_to_indices(real))[0]
        print(row("VQVAE reconstructions", evaluate(recon, labels.numpy(), **kw_eval), colour_report(recon, reference),
                  None, None))
    wanted = [i % 10 for i in range(n)]
    sampler_kw = {k: v for k, v in (("top_k", args.top_k), ("top_p", args.top_p)) if v is not None}
    last = report = None
    for sampler in args.samplers:
        for w in args.scales:
            t0 = time.perf_counter()
            kw = {"guidance": "none"} if w == 1.0 else {"guidance": policy, "guidance_scale": w, **guided_options}
            res = pipe(labels=wanted, seed=args.seed, output_type="pt", batch_size=100, sampler=sampler,
                       steps=args.steps, **kw, **sampler_kw)
            per_image = (time.perf_counter() - t0) / n
            images = res.images * 2 - 1
            report = evaluate(images, wanted, **kw_eval)
            label = ("no guidance" if w == 1.0 else f"{policy} w={w:g}") + (f", {sampler}" if sampler else "")
            if shown_options and w != 1.0:
                label += " (" + ", ".join(f"{k}={v}" for k, v in shown_options.items()) + ")"
            if args.steps:
                label += f", {args.steps} steps"
            print(row(label, report, colour_report(images, reference), sum(res.nfe) / n, per_image))
            last = res
    if report is not None and report.per_class:
        print("per-class accuracy of the last row: " + ", ".join(
            f"{CLASS_NAMES[r['class']]} {r['accuracy']:.2f}" for r in report.per_class))
    if args.grid and last is not None:
        save_grid(last.images[:60] * 2 - 1, args.grid, columns=10, zoom=3)
        print(f"grid of the last run's first 60 (columns = classes) saved to {args.grid}")


if __name__ == "__main__":
    main()
