"""A probe, not a feature: per-scale sampling temperature on a next-scale model, scored by shapes_quality.py.

The guided logits of scale k are divided by T_k before top-k/top-p and the draw (T < 1 sharpens). The sampler has
no temperature option (the official one has none); this wraps its filter step for the run, to ask whether a colder
draw at some scales buys class accuracy before anyone adds one.

    python benchmarks/var_temperature.py --temperatures 1 1 1 1 1 0.5 -- --model var-shapes --scales 5 \
        --per-class 50 --seed 20000
    (one temperature per scale, coarse to fine; everything after -- goes to shapes_quality.py)
"""

from __future__ import annotations

import argparse
import sys

import shapes_quality
import torch

from genloom.samplers import next_scale


def tempered(temperatures: list[float]):  # noqa: ANN201
    """``filter_logits_`` dividing each call's logits by the next temperature in turn (one call per scale)."""
    original = next_scale.filter_logits_
    calls = 0

    def filter_logits_(logits: torch.Tensor, top_k: int, top_p: float | None) -> torch.Tensor:
        nonlocal calls
        logits.div_(temperatures[calls % len(temperatures)])
        calls += 1
        return original(logits, top_k, top_p)

    return filter_logits_


def main() -> None:
    if "--" not in sys.argv:
        raise SystemExit("separate the temperatures from shapes_quality.py's arguments with --")
    split = sys.argv.index("--")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--temperatures", type=float, nargs="+", required=True)
    args = parser.parse_args(sys.argv[1:split])
    if any(t <= 0 for t in args.temperatures):
        raise SystemExit(f"temperatures must be > 0, got {args.temperatures}")
    print(f"per-scale temperatures {args.temperatures}")
    next_scale.filter_logits_ = tempered(args.temperatures)
    sys.argv = [sys.argv[0], *sys.argv[split + 1:]]
    shapes_quality.main()


if __name__ == "__main__":
    main()
