"""Guidance policies side by side on one model: mean NFE per image, wall time, class accuracy, FD, precision and
recall (shapes-cnn against the shapes test split) for none / CFG / AG / LinearAG / GFCG / CFG+GFCG / ATG, fixed
seeds and balanced labels. Rows a model cannot run (LinearAG is diffusion-only; ATG needs ``--guide-weights``,
on VAR an earlier checkpoint on the same VQVAE) are listed as skipped with the reason. LinearAG's table is
calibrated here first on ``--calibrate`` full-CFG trajectories (seeds disjoint from the measured ones) unless
``--lag-table`` is given.

    python benchmarks/guidance_table.py --model lamamba --weights W --vae V -L 'noise_schedule={...}' \\
        --sampler ddim --steps 25 --scale 3 [--per-class 50] [--ag-threshold 0.99] [--gfcg-scale 2] \\
        [--guide-weights EARLIER_CHECKPOINT] [--rows none cfg adaptive ...]
    python benchmarks/guidance_table.py --model var-shapes --scale 5 --rows none cfg adaptive gfcg cfg+gfcg \
        [--gfcg-choose-scale 2] [--guide-weights EARLIER_CHECKPOINT --atg-scale 2]
    smoke mode (CI): --model var-shapes --per-class 1 --rows none cfg adaptive --num-reference 50
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _models import add_model_arguments, load_model

ROWS = ("none", "cfg", "adaptive", "linear-ag", "gfcg", "cfg+gfcg", "autoguidance")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--sampler", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--scale", type=float, default=3.0, help="w of CFG, AG, LinearAG, ATG and of CFG+GFCG's CFG")
    parser.add_argument("--ag-threshold", type=float, default=0.99)
    parser.add_argument("--ag-similarity", default=None, help="AG's similarity space (default: the policy's, eps)")
    parser.add_argument("--gfcg-scale", type=float, default=2.0, help="GFCG's w_max")
    parser.add_argument("--gfcg-choose-scale", type=int, default=2, help="next-scale models: GFCG's choose_scale")
    parser.add_argument("--guide-weights", default=None, help="autoguidance's weaker checkpoint")
    parser.add_argument("--atg-scale", type=float, default=None, help="ATG's w (default: --scale)")
    parser.add_argument("--lag-table", default=None, help="a LinearAG table (default: calibrate one here)")
    parser.add_argument("--calibrate", type=int, default=100, help="trajectories for LinearAG's calibration")
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-reference", type=int, default=5000)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    args = parser.parse_args()

    from genloom.engine.errors import GenloomError
    from genloom.engine.specs import Paradigm
    from genloom.eval import evaluate

    pipe = load_model(args)
    diffusion = pipe.spec.paradigm is Paradigm.DIFFUSION
    n = 10 * args.per_class
    labels = [i % 10 for i in range(n)]
    common = dict(labels=labels, seed=args.seed, output_type="pt", batch_size=100, sampler=args.sampler,
                  steps=args.steps)
    w = args.scale
    lag_table = args.lag_table
    with tempfile.TemporaryDirectory() as tmp:
        if "linear-ag" in args.rows and diffusion and lag_table is None:
            from genloom.plugins.guidance.linear_ag import calibrate

            request = pipe.check(labels=[0], sampler=args.sampler, steps=args.steps)
            t0 = time.perf_counter()
            table = calibrate(pipe, sampler=request.sampler.name, steps=request.steps, scale=w,
                              num=args.calibrate, seed=args.seed + 10 ** 6, log=lambda _: None)
            lag_table = str(table.save(Path(tmp) / "linear_ag.safetensors"))
            print(f"LinearAG calibrated on {args.calibrate} trajectories in {time.perf_counter() - t0:.1f} s; R² of the"
                  f" estimated steps: " + ", ".join(f"{float(r):.3f}" for r, k in zip(table.r2, table.replace) if k))
        gfcg_extra = {} if diffusion else {"choose_scale": args.gfcg_choose_scale}
        # the CFG row runs the model's own CFG options (var-shapes: a constant schedule); CFG+GFCG's CFG the same
        cfg_own = {f"cfg.{k}": v for k, v in pipe.spec.default_guidance_options.items()} \
            if pipe.spec.default_guidance == "cfg" else {}
        settings = {
            "none": {"guidance": "none"},
            "cfg": {"guidance": "cfg", "guidance_scale": w},
            "adaptive": {"guidance": "adaptive", "guidance_scale": w, "threshold": args.ag_threshold,
                         **({"similarity": args.ag_similarity} if args.ag_similarity else {})},
            "linear-ag": {"guidance": "linear-ag", "guidance_scale": w, "table": lag_table},
            "gfcg": {"guidance": "gfcg", "guidance_scale": args.gfcg_scale, **gfcg_extra},
            "cfg+gfcg": {"guidance": "cfg+gfcg", "guidance_scale": w, "gfcg.scale": args.gfcg_scale, **cfg_own,
                         **{f"gfcg.{k}": v for k, v in gfcg_extra.items()}},
            "autoguidance": {"guidance": "autoguidance", "guidance_scale": w if args.atg_scale is None else
                             args.atg_scale, "guide_weights": args.guide_weights},
        }
        print(f"{pipe.spec.name}: {n} samples (seed {args.seed}+), {args.num_reference} test images as reference")
        print("| policy | mean NFE | s/image | class accuracy | FD | precision | recall |")
        print("|---|---|---|---|---|---|---|")
        for row in args.rows:
            if row == "autoguidance" and args.guide_weights is None:
                print(f"| {row} | skipped: needs --guide-weights (a weaker checkpoint) | | | | | |")
                continue
            try:
                t0 = time.perf_counter()
                res = pipe(**common, **settings[row])
            except GenloomError as exc:
                print(f"| {row} | skipped: {exc} | | | | | |")
                continue
            per_image = (time.perf_counter() - t0) / n
            r = evaluate(res.images * 2 - 1, labels, num_reference=args.num_reference, subsets=5 if n >= 50 else 1)
            print(f"| {row} | {sum(res.nfe) / n:.2f} | {per_image:.4f} | {r.accuracy:.4f} | {r.fd:.4f} | "
                  f"{r.precision:.4f} | {r.recall:.4f} |")


if __name__ == "__main__":
    main()
