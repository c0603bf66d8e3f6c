"""Quality of the embedded VAR default: class accuracy and FD (reference classifier, shapes test split) of
generated samples at several CFG scales, plus the same metrics on VQVAE reconstructions of real test images (an
upper bound the transformer cannot beat). Optionally saves an image grid.

    python benchmarks/var_shapes_quality.py [--per-class 50] [--scales 1 2 3 4] [--grid docs/var_shapes_grid.png]
                                            [--weights W --vae V]
"""

from __future__ import annotations

import argparse
import time

import torch

import genloom
from genloom.data import load_split
from genloom.data.grid import save_grid
from genloom.eval import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 2.0, 3.0, 4.0])
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--grid", default=None)
    parser.add_argument("--weights", default=None, help="VAR checkpoint (default: the embedded var-shapes)")
    parser.add_argument("--vae", default=None, help="its VQVAE checkpoint")
    args = parser.parse_args()
    extra = {"vae": args.vae} if args.vae else {}
    pipe = genloom.load("var-shapes" if "var-shapes" in genloom.default_engine().models else "var",
                        weights=args.weights, **extra)
    n = 10 * args.per_class
    real, labels = load_split("test", n, start=10_000)
    with torch.inference_mode():
        recon = pipe.model.vae.indices_to_img(pipe.model.vae.img_to_indices(real))[0]
    r = evaluate(recon, labels.numpy(), num_reference=5000, subsets=5)
    print(f"{'set':<28} {'accuracy':>8} {'FD':>9} {'FD mean ± std':>18} {'precision':>9} {'recall':>7} {'s/img':>7}")
    print(f"{'VQVAE reconstructions':<28} {r.accuracy:>8.4f} {r.fd:>9.4f} {r.fd_mean:>9.4f} ± {r.fd_std:<6.4f}"
          f"{r.precision:>9.4f} {r.recall:>7.4f} {'-':>7}")
    wanted = [i % 10 for i in range(n)]
    for w in args.scales:
        t0 = time.perf_counter()
        kw = {"guidance": "none"} if w == 1.0 else {"guidance": "cfg", "guidance_scale": w}
        res = pipe(labels=wanted, seed=0, output_type="pt", top_k=args.top_k, batch_size=100, **kw)
        per_image = (time.perf_counter() - t0) / n
        r = evaluate(res.images * 2 - 1, wanted, num_reference=5000, subsets=5)
        name = "no guidance" if w == 1.0 else f"CFG w={w:g} (linear ramp)"
        print(f"{name:<28} {r.accuracy:>8.4f} {r.fd:>9.4f} {r.fd_mean:>9.4f} ± {r.fd_std:<6.4f}"
              f"{r.precision:>9.4f} {r.recall:>7.4f} {per_image:>7.4f}")
        if args.grid and w == args.scales[-1]:
            save_grid(res.images[:60] * 2 - 1, args.grid, columns=10, zoom=3)
            print(f"grid of the first 60 (columns = classes) saved to {args.grid}")


if __name__ == "__main__":
    main()
