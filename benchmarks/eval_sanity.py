"""Sanity figures for the embedded dataset, the reference classifier and the metrics.

Prints: classifier accuracy on the test split; FD / precision / recall of real images (val split) against the
test split — which should be near 0 / near 1 — and of corrupted sets (pixel noise, a single class, wrong labels).

    python benchmarks/eval_sanity.py [--n 5000] [--subsets 5]
    smoke mode (CI): --n 60 --subsets 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from genloom.data import render
from genloom.eval import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000, help="images per set (and reference images)")
    parser.add_argument("--subsets", type=int, default=5)
    args = parser.parse_args()
    n = args.n
    t0 = time.perf_counter()
    test_u8, test_labels = render("test", 0, n)
    val_u8, val_labels = render("val", 0, n)
    test = test_u8.permute(0, 2, 3, 1).numpy()
    val = val_u8.permute(0, 2, 3, 1).numpy()
    rng = np.random.default_rng(0)
    noisy = np.clip(val.astype(np.int16) + rng.normal(0, 40, val.shape).round(), 0, 255).astype(np.uint8)
    one_class = np.repeat(val[val_labels.numpy() == 0], 10, axis=0)[:n]
    sets = {
        "test split vs itself (reference)": (test, test_labels.numpy()),
        "val split (real, disjoint)": (val, val_labels.numpy()),
        "val + Gaussian pixel noise σ=40": (noisy, val_labels.numpy()),
        "uniform random pixels": (rng.integers(0, 256, val.shape, dtype=np.uint8), val_labels.numpy()),
        "val, class 0 only (collapse)": (one_class, np.zeros(len(one_class), dtype=np.int64)),
        "val with shifted labels": (val, (val_labels.numpy() + 1) % 10),
    }
    print(f"reference: shapes test split, first {n} images; classifier shapes-cnn; {args.subsets} subsets")
    print(f"{'set':<36} {'accuracy':>8} {'FD':>10} {'FD mean ± std':>20} {'precision':>9} {'recall':>7}")
    for name, (images, labels) in sets.items():
        r = evaluate(images, labels, reference="test", num_reference=n, subsets=args.subsets)
        print(f"{name:<36} {r.accuracy:>8.4f} {r.fd:>10.4f} {r.fd_mean:>11.4f} ± {r.fd_std:<7.4f}"
              f"{r.precision:>9.4f} {r.recall:>7.4f}")
    print(f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
