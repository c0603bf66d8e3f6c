"""How much zero-shot editing changes the pixels it should keep: `var-shapes`, real test images, the centre
regenerated, with and without pasting the kept source pixels back (``blend``).

    python benchmarks/edit_kept_region.py [--n 50] [--hole 16]
    smoke mode (CI): --n 2
"""

from __future__ import annotations

import argparse

import torch

import genloom
from genloom.data import load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=50, help="test images (start 300)")
    parser.add_argument("--hole", type=int, default=16, help="side of the regenerated centre square")
    args = parser.parse_args()
    pipe = genloom.load("var-shapes")
    images, _ = load_split("test", args.n, start=300)
    side = pipe.spec.image_size
    lo = (side - args.hole) // 2
    keep = torch.ones(side, side)
    keep[lo:lo + args.hole, lo:lo + args.hole] = 0
    print(f"var-shapes, {args.n} test images, centre {args.hole}×{args.hole} regenerated; kept-region MAE in /255")
    for blend in (False, True):
        errors = []
        for i, image in enumerate(images):
            out = pipe.edit(image, keep, label=i % 10, seed=i, output_type="pt", blend=blend).images[0] * 2 - 1
            errors.append(float((out - image).abs()[:, keep == 1].mean() * 127.5))
        print(f"blend={blend!s:<5}  mean {sum(errors) / len(errors):6.2f}  max {max(errors):6.2f}")


if __name__ == "__main__":
    main()
