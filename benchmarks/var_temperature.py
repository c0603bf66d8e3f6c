"""A probe, not a feature: per-scale sampling temperature on a next-scale model, scored by shapes_quality.py.

The guided logits of scale k are divided by T_k before top-k/top-p and the draw (T < 1 sharpens). The sampler has
no temperature option (the official one has none); this wraps its filter step for the run, to ask whether a colder
draw at some scales buys class accuracy before anyone adds one.

    python benchmarks/var_temperature.py --temperatures 1 1 1 1 1 0.5 -- --model var-shapes --scales 5 \
        --per-class 50 --seed 20000
    (one temperature per scale, coarse to fine; everything after -- goes to shapes_quality.py)
    smoke mode (CI): --temperatures 1 1 1 1 1 0.5 -- --model var-shapes --per-class 1 --scales 5 --num-reference 50
"""

from __future__ import annotations

import argparse
import sys

import shapes_quality
import torch

from genloom.samplers import next_scale


class Tempered:
    """``filter_logits_`` dividing scale k's logits by T_k. The sampler calls it once per scale, coarse to fine; a
    call with no more tokens than the one before starts the next batch. A batch whose scale count is not the
    temperatures' stops the run: a mis-sized list would otherwise temper the wrong scales silently."""

    def __init__(self, temperatures: list[float]) -> None:
        self.temperatures = temperatures
        self.original = next_scale.filter_logits_
        self.seen: list[int] = []  # token counts of this batch's scales so far

    def __call__(self, logits: torch.Tensor, top_k: int, top_p: float | None) -> torch.Tensor:
        tokens = logits.shape[-2]
        if self.seen and tokens <= self.seen[-1]:
            self.finish_batch()
        self.seen.append(tokens)
        if len(self.seen) > len(self.temperatures):
            self.mismatch(f"more than {len(self.temperatures)}")
        logits.div_(self.temperatures[len(self.seen) - 1])
        return self.original(logits, top_k, top_p)

    def finish_batch(self) -> None:
        if self.seen and len(self.seen) != len(self.temperatures):
            self.mismatch(str(len(self.seen)))
        self.seen.clear()

    def mismatch(self, scales: str) -> None:
        raise SystemExit(f"the model samples {scales} scales; give one temperature per scale, not "
                         f"{len(self.temperatures)}")


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
    tempered = Tempered(args.temperatures)
    next_scale.filter_logits_ = tempered
    sys.argv = [sys.argv[0], *sys.argv[split + 1:]]
    shapes_quality.main()
    tempered.finish_batch()


if __name__ == "__main__":
    main()
