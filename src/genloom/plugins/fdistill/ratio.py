"""The two-stage normalisation of f-distill's weights (spec §4.5): the discriminator's ratio is clamped, divided by
its mean per noise-level bin (the exact ratio has E_q[r] = 1 at every t), mapped through h and divided by the
batch mean of h (so the loss has VSD's scale). Means are taken over every process."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

LOGIT_CLAMP = 10.0
RATIO_RANGE = (0.1, 20.0)
EPS = 1e-6


def _all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        x = x.clone()
        torch.distributed.all_reduce(x)
    return x


def global_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of ``x`` over every process's rows."""
    total = _all_reduce_sum(torch.stack([x.sum(), torch.tensor(float(x.numel()), device=x.device)]))
    return total[0] / total[1]


class RatioNormaliser(nn.Module):
    """Per-bin running means of the ratio (a buffer, so it is saved and resumed with the run)."""

    def __init__(self, bins: int, t_lo: float, t_hi: float, ema: float = 0.0) -> None:
        super().__init__()
        self.t_lo, self.t_hi, self.ema = t_lo, t_hi, ema
        self.register_buffer("bin_means", torch.ones(bins))

    def bin_of(self, t: torch.Tensor) -> torch.Tensor:
        n = len(self.bin_means)
        width = max(self.t_hi - self.t_lo, EPS)
        return ((t.float() - self.t_lo) / width * n).long().clamp(0, n - 1)

    @torch.no_grad()
    def forward(self, logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Detached, float32 ratios normalised per bin of ``t`` (updating the bins seen in this batch)."""
        r = logits.detach().float().clamp(-LOGIT_CLAMP, LOGIT_CLAMP).exp().clamp(*RATIO_RANGE)
        bins = self.bin_of(t.to(r.device))
        n = len(self.bin_means)
        sums = torch.zeros(n, device=r.device).index_add_(0, bins, r)
        counts = torch.zeros(n, device=r.device).index_add_(0, bins, torch.ones_like(r))
        sums, counts = _all_reduce_sum(sums), _all_reduce_sum(counts)
        seen = counts > 0
        means = self.bin_means.to(r.device)
        means[seen] = self.ema * means[seen] + (1 - self.ema) * sums[seen] / counts[seen]
        self.bin_means.copy_(means)
        return r / (means[bins] + EPS)


def normalised_weights(h: Callable[[torch.Tensor], torch.Tensor], r: torch.Tensor) -> torch.Tensor:
    """``h(r)`` divided by its mean over the global batch: the average weight is 1."""
    w = h(r)
    return w / (global_mean(w) + EPS)
