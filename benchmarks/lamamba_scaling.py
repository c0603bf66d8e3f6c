"""LaMamba's cost per token as the latent grows, against a global-attention DiT of the same width and depth, and
the chunked selective scan against the sequential reference.

Both networks are single-resolution stacks (LaMamba: one stage of ``--depth`` blocks, no merging, plus its
bottleneck and decoder; the baseline: as many DiT blocks — adaLN-Zero, global attention through SDPA, MLP 4×) on
a (1, 4, side, side) latent with patch 1, random weights, forward only. Everything alternates in one process
(min over ``--repeats``), so a busy machine slows both alike. Prints ms per forward and µs per token per side,
and the growth of the per-token time from the smallest to the largest side; then the scan table.

    python benchmarks/lamamba_scaling.py [--sides 16 32 64 128] [--width 64] [--depth 1] [--repeats 3]
        [--scan-length 4096] [--threads 2]
    smoke mode (CI): --sides 8 16 --width 16 --repeats 1 --scan-length 64 --threads 1
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sides", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scan-length", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--plot", default=None, help="Also draw µs/token against the side into this PNG.")
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F
    from torch import nn

    from genloom.kernels.selective_scan import selective_scan_chunked, selective_scan_reference
    from genloom.plugins.lamamba.config import LaMambaConfig
    from genloom.plugins.lamamba.network import LaMambaNetwork, TimestepEmbedder

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    width, heads = args.width, max(1, args.width // 32)

    class DiTBlock(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
            self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
            self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
            self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(approximate="tanh"),
                                     nn.Linear(4 * width, width))
            self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

        def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            b, n, _ = x.shape
            s1, g1, a1, s2, g2, a2 = self.ada(c)[:, None].chunk(6, dim=-1)
            h = self.norm1(x) * (1 + g1) + s1
            q, k, v = self.qkv(h).reshape(b, n, 3, heads, -1).permute(2, 0, 3, 1, 4)
            h = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, width)
            x = x + a1 * self.proj(h)
            return x + a2 * self.mlp(self.norm2(x) * (1 + g2) + s2)

    class DiT(nn.Module):
        def __init__(self, side: int, blocks: int) -> None:
            super().__init__()
            self.embed = nn.Conv2d(4, width, 1)
            self.pos = nn.Parameter(torch.randn(1, side * side, width) * 0.02)
            self.t = TimestepEmbedder(width)
            self.blocks = nn.ModuleList(DiTBlock() for _ in range(blocks))
            self.out = nn.Linear(width, 8)

        def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            c = self.t(t)
            h = self.embed(x).flatten(2).transpose(1, 2) + self.pos
            for block in self.blocks:
                h = block(h, c)
            return self.out(h)

    def timed(fn: object) -> float:
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        return time.perf_counter() - start

    print(f"forward time, batch 1, width {width}, threads {args.threads}")
    print(f"{'side':>5} {'tokens':>7} {'blocks':>6} {'LaMamba ms':>11} {'µs/token':>9} {'DiT ms':>9} {'µs/token':>9}")
    per_token: dict[str, list[float]] = {"lamamba": [], "dit": []}
    for side in args.sides:
        config = LaMambaConfig(dims=(width,), depths=(args.depth,), bottleneck_depth=args.depth, num_heads=heads,
                               window_size=8, latent_size=side, num_classes=10)
        lamamba = LaMambaNetwork(config).eval()
        blocks = len([m for m in lamamba.modules() if m.__class__.__name__ == "LaMambaBlock"])
        dit = DiT(side, blocks).eval()
        x, t, y = torch.randn(1, 4, side, side), torch.tensor([500.0]), torch.tensor([1])
        best = {"lamamba": float("inf"), "dit": float("inf")}
        with torch.inference_mode():
            lamamba(x, t, y), dit(x, t)  # warm-up
            for _ in range(args.repeats):
                best["lamamba"] = min(best["lamamba"], timed(lambda: lamamba(x, t, y)))
                best["dit"] = min(best["dit"], timed(lambda: dit(x, t)))
        tokens = side * side
        for k in best:
            per_token[k].append(best[k] / tokens * 1e6)
        print(f"{side:>5} {tokens:>7} {blocks:>6} {best['lamamba'] * 1e3:>11.1f} {per_token['lamamba'][-1]:>9.2f} "
              f"{best['dit'] * 1e3:>9.1f} {per_token['dit'][-1]:>9.2f}")
    for k, v in per_token.items():
        print(f"{k}: µs/token grows {v[-1] / v[0]:.2f}× from side {args.sides[0]} to {args.sides[-1]}")
    if args.plot:
        draw(args.plot, args.sides, per_token)

    length = args.scan_length
    print(f"\nselective scan at L = {length}, threads {args.threads} (seconds, min of {args.repeats}):")
    print(f"{'batch':>5} {'D':>5} {'N':>3} {'groups':>6} {'reference':>10} {'chunked':>9} {'speed-up':>9}")
    for b, d, n, g in ((1, 64, 1, 4), (2, 256, 1, 4), (1, 64, 16, 1), (2, 512, 1, 4)):
        gen = torch.Generator().manual_seed(d)
        ops = dict(u=torch.randn(b, d, length, generator=gen), delta=torch.randn(b, d, length, generator=gen),
                   A=-torch.rand(d, n, generator=gen) - 0.1, B=torch.randn(b, g, n, length, generator=gen),
                   C=torch.randn(b, g, n, length, generator=gen), D=torch.randn(d, generator=gen),
                   delta_bias=torch.randn(d, generator=gen) * 0.1, delta_softplus=True)
        best_ref = best_chunk = float("inf")
        with torch.inference_mode():
            for _ in range(args.repeats):
                best_ref = min(best_ref, timed(lambda: selective_scan_reference(**ops)))
                best_chunk = min(best_chunk, timed(lambda: selective_scan_chunked(**ops)))
        print(f"{b:>5} {d:>5} {n:>3} {g:>6} {best_ref:>10.4f} {best_chunk:>9.4f} {best_ref / best_chunk:>8.1f}×")


def draw(path: str, sides: list[int], series: dict[str, list[float]]) -> None:
    """A small line chart (log₂ side on x, µs/token on a log y axis) with PIL, no plotting library needed."""
    import math

    from PIL import Image, ImageDraw

    w, h, m = 480, 300, 50
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    values = [v for vs in series.values() for v in vs]
    lo, hi = math.log10(min(values)) - 0.1, math.log10(max(values)) + 0.1
    xs = [math.log2(s) for s in sides]

    def point(x: float, y: float) -> tuple[float, float]:
        px = m + (x - xs[0]) / max(xs[-1] - xs[0], 1e-9) * (w - 2 * m)
        return px, h - m - (math.log10(y) - lo) / (hi - lo) * (h - 2 * m)

    d.line([(m, m), (m, h - m), (w - m, h - m)], fill="black")
    for s, x in zip(sides, xs):
        d.text((point(x, 10 ** lo)[0] - 8, h - m + 6), str(s), fill="black")
    d.text((w // 2 - 40, h - 20), "latent side", fill="black")
    d.text((6, 8), "microseconds per token (log scale)", fill="black")
    for (name, vs), colour in zip(series.items(), ("#1f77b4", "#d62728")):
        pts = [point(x, v) for x, v in zip(xs, vs)]
        d.line(pts, fill=colour, width=3)
        d.text((pts[-1][0] - 60, pts[-1][1] - 16), name, fill=colour)
        for v, (px, py) in zip(vs, pts):
            d.text((px + 4, py + 4), f"{v:.1f}", fill=colour)
    img.save(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
