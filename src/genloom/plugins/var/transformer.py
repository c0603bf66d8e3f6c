"""The VAR next-scale transformer (AdaLN blocks, L2-normalised attention, block-causal mask, KV cache).

Module and buffer names follow the official state dict, so official checkpoints load without a key map.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...kernels.dispatch import default_dispatcher
from .config import VARConfig

MAX_SCALE_MUL = math.log(100.0)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, l2_norm: bool) -> None:
        super().__init__()
        self.heads, self.head_dim, self.l2_norm = heads, dim // heads, l2_norm
        self.mat_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("zero_k_bias", torch.zeros(dim))
        if l2_norm:
            self.scale_mul_1H11 = nn.Parameter(torch.full((1, heads, 1, 1), math.log(4.0)))
            self.scale = 1.0
        else:
            self.scale = 0.25 / math.sqrt(self.head_dim)
        self.proj = nn.Linear(dim, dim)
        self.cache: tuple[torch.Tensor, torch.Tensor] | None = None  # (B, H, max_len, hd) buffers
        self.cache_len = 0
        self.max_len = 0

    def kv_caching(self, enabled: bool, max_len: int = 0) -> None:
        """Enable with the full sequence length: keys/values are written into preallocated buffers (no
        re-concatenation per scale, no transient second copy)."""
        self.max_len = max_len if enabled else 0
        self.cache, self.cache_len = None, 0

    def keep_rows(self, index: torch.Tensor) -> None:
        if self.cache is not None:
            self.cache = (self.cache[0][index], self.cache[1][index])

    def start_rows(self) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, int]:
        """Set the cache aside so a forward fills a fresh one for new rows; :meth:`join_rows` puts it back."""
        kept = (self.cache, self.cache_len)
        self.cache, self.cache_len = None, 0
        return kept

    def join_rows(self, kept: tuple[tuple[torch.Tensor, torch.Tensor] | None, int]) -> None:
        """The set-aside cache with the new rows' cache (same length so far) appended as further rows."""
        old, length = kept
        if old is None:  # no rows before: the new rows' cache is the whole cache
            return
        if self.cache is not None:
            if self.cache_len != length:
                raise RuntimeError(f"new rows cover {self.cache_len} tokens, the cache {length}")
            self.cache = (torch.cat((old[0], self.cache[0])), torch.cat((old[1], self.cache[1])))
        else:
            self.cache = old
        self.cache_len = length

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor | None) -> torch.Tensor:
        b, n, c = x.shape
        bias = torch.cat((self.q_bias, self.zero_k_bias, self.v_bias))
        qkv = F.linear(x, self.mat_qkv.weight, bias).view(b, n, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, n, hd)
        if self.l2_norm:
            q = F.normalize(q, dim=-1).mul(self.scale_mul_1H11.clamp_max(MAX_SCALE_MUL).exp())
            k = F.normalize(k, dim=-1)
        if self.max_len:
            if self.cache is None:
                shape = (b, self.heads, self.max_len, self.head_dim)
                self.cache = (k.new_empty(shape), v.new_empty(shape))
            end = self.cache_len + n
            self.cache[0][:, :, self.cache_len:end] = k
            self.cache[1][:, :, self.cache_len:end] = v
            self.cache_len = end
            k, v = self.cache[0][:, :, :end], self.cache[1][:, :, :end]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class FFN(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class RunMemo:
    """Remembers a function of the class condition for one sampling run: the condition tensor does not change
    from scale to scale (a new tensor — compacted rows — recomputes), so the AdaLN projections are computed once
    per run instead of once per scale. Off outside cached sampling (training needs fresh graphs)."""

    def __init__(self) -> None:
        self.enabled, self.key, self.value = False, None, None

    def __call__(self, fn: Any, cond: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return fn(cond)
        if self.key is not cond:
            self.key, self.value = cond, fn(cond)
        return self.value  # type: ignore[return-value]

    def reset(self, enabled: bool) -> None:
        self.enabled, self.key, self.value = enabled, None, None


class AdaLNBlock(nn.Module):
    """x += γ1·Attn(LN(x)(1+s1)+b1); x += γ2·FFN(LN(x)(1+s2)+b2); parameters from the class condition."""

    def __init__(self, cfg: VARConfig, kernels: Any = None) -> None:
        super().__init__()
        c = cfg.embed_dim
        self.dim, self.shared, self.kernels = c, cfg.shared_aln, kernels
        self.attn = SelfAttention(c, cfg.num_heads, cfg.attn_l2_norm)
        self.ffn = FFN(c, round(c * cfg.mlp_ratio))
        self.ln_wo_grad = nn.LayerNorm(c, eps=cfg.norm_eps, elementwise_affine=False)
        if self.shared:
            self.ada_gss = nn.Parameter(torch.zeros(1, 1, 6, c))
        else:
            self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(c, 6 * c))
        self.memo = RunMemo()

    def modulation(self, cond: torch.Tensor) -> torch.Tensor:
        """(B, 1, 6, C): γ1, γ2, scale1, scale2, shift1, shift2 from the condition (or the shared table)."""
        if self.shared:  # cond is the shared (B, 1, 6, C) table
            return self.ada_gss + cond
        return self.ada_lin(cond).view(-1, 1, 6, self.dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, attn_bias: torch.Tensor | None) -> torch.Tensor:
        g1, g2, s1, s2, b1, b2 = self.memo(self.modulation, cond).unbind(2)
        kernels, eps = self.kernels or default_dispatcher(), self.ln_wo_grad.eps
        x = x + self.attn(kernels("modulated_layer_norm", x, b1, s1, None, None, eps), attn_bias).mul_(g1)
        return x + self.ffn(kernels("modulated_layer_norm", x, b2, s2, None, None, eps)).mul(g2)


class SharedAdaLin(nn.Linear):
    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return super().forward(cond).view(cond.shape[0], 1, 6, -1)


class AdaLNBeforeHead(nn.Module):
    def __init__(self, dim: int, eps: float, kernels: Any = None) -> None:
        super().__init__()
        self.dim, self.kernels = dim, kernels
        self.ln_wo_grad = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.memo = RunMemo()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.memo(lambda c: self.ada_lin(c).view(-1, 1, 2, self.dim), cond).unbind(2)
        kernels = self.kernels or default_dispatcher()
        return kernels("modulated_layer_norm", x, shift, scale, None, None, self.ln_wo_grad.eps)


class VARTransformer(nn.Module):
    def __init__(self, cfg: VARConfig, kernels: Any = None) -> None:
        super().__init__()
        self.cfg = cfg
        c, pns = cfg.embed_dim, cfg.patch_nums
        self.num_classes, self.first_l = cfg.num_classes, pns[0] ** 2
        self.begin_ends, cur = [], 0
        for pn in pns:
            self.begin_ends.append((cur, cur + pn * pn))
            cur += pn * pn
        self.seq_len = cur
        self.word_embed = nn.Linear(cfg.cvae, c)
        self.class_emb = nn.Embedding(cfg.num_classes + 1, c)
        self.pos_start = nn.Parameter(torch.zeros(1, self.first_l, c))
        self.pos_1LC = nn.Parameter(torch.zeros(1, cur, c))
        self.lvl_embed = nn.Embedding(len(pns), c)
        self.shared_ada_lin = nn.Sequential(nn.SiLU(), SharedAdaLin(c, 6 * c)) if cfg.shared_aln else nn.Identity()
        self.blocks = nn.ModuleList(AdaLNBlock(cfg, kernels) for _ in range(cfg.depth))
        self.head_nm = AdaLNBeforeHead(c, cfg.norm_eps, kernels)
        self.gss_memo = RunMemo()
        self.head = nn.Linear(c, cfg.vocab_size)
        lvl = torch.cat([torch.full((pn * pn,), k) for k, pn in enumerate(pns)]).view(1, cur)
        self.register_buffer("lvl_1L", lvl)
        mask = torch.where(lvl.view(1, cur, 1) >= lvl.view(1, 1, cur), 0.0, -torch.inf)
        self.register_buffer("attn_bias_for_masking", mask.reshape(1, 1, cur, cur).contiguous())

    # ------------------------------------------------------------------ shared pieces
    def lvl_pos(self) -> torch.Tensor:
        return self.lvl_embed(self.lvl_1L) + self.pos_1LC

    def logits(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The head in the network's own dtype (the official code runs it in float32 under autocast: ours is
        float32 unless the whole network was cast), logits always float32."""
        dtype = self.head.weight.dtype
        return self.head(self.head_nm(x.to(dtype), cond).to(dtype)).float()

    def run_blocks(self, x: torch.Tensor, cond: torch.Tensor, attn_bias: torch.Tensor | None) -> torch.Tensor:
        gss = self.gss_memo(self.shared_ada_lin, cond)
        for block in self.blocks:
            x = block(x, gss, attn_bias)
        return x

    def kv_caching(self, enabled: bool) -> None:
        """Cached sampling on or off; also (re)starts the per-run memos of the AdaLN projections."""
        for block in self.blocks:
            block.attn.kv_caching(enabled, self.seq_len)
            block.memo.reset(enabled)
        self.head_nm.memo.reset(enabled)
        self.gss_memo.reset(enabled)

    def keep_rows(self, index: torch.Tensor) -> None:
        """Compact every layer's KV cache to these rows (a guidance branch stopped needing the others)."""
        for block in self.blocks:
            block.attn.keep_rows(index)

    def add_rows(self, tokens: torch.Tensor, cond: torch.Tensor) -> None:
        """Append rows to every layer's KV cache: the block-causal forward of their tokens over every scale so far
        (a guidance branch that starts after the first scale)."""
        kept = [block.attn.start_rows() for block in self.blocks]
        try:
            end = tokens.shape[1]
            self.run_blocks(tokens, cond, self.attn_bias_for_masking[:, :, :end, :end])
        finally:
            for block, k in zip(self.blocks, kept, strict=True):
                block.attn.join_rows(k)

    # ------------------------------------------------------------------ teacher forcing
    def forward(self, labels: torch.Tensor, x_wo_first_l: torch.Tensor) -> torch.Tensor:
        """Masked forward over all scales (training / parity); no label dropout here."""
        b = labels.shape[0]
        cond = self.class_emb(labels)
        sos = cond.unsqueeze(1).expand(b, self.first_l, -1) + self.pos_start.expand(b, self.first_l, -1)
        x = torch.cat((sos, self.word_embed(x_wo_first_l.float())), dim=1)
        x = x + self.lvl_embed(self.lvl_1L.expand(b, -1)) + self.pos_1LC
        x = self.run_blocks(x, cond, self.attn_bias_for_masking)
        return self.logits(x, cond)

    # ------------------------------------------------------------------ cached inference
    def first_stage(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Condition vectors and the first scale's tokens for a batch of (possibly null) labels."""
        cond = self.class_emb(labels)
        b = labels.shape[0]
        tokens = (cond.unsqueeze(1).expand(b, self.first_l, -1) + self.pos_start.expand(b, self.first_l, -1)
                  + self.lvl_pos()[:, :self.first_l])
        return cond, tokens

    def stage_logits(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """One scale with the KV cache on: tokens of scale k attend to the cache of scales ≤ k."""
        return self.logits(self.run_blocks(tokens, cond, None), cond)

    def prefix_logits(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Reference path without a cache: the masked forward over every scale so far; logits of the last scale."""
        end = tokens.shape[1]
        k = next(i for i, (_, e) in enumerate(self.begin_ends) if e == end)
        x = self.run_blocks(tokens, cond, self.attn_bias_for_masking[:, :, :end, :end])
        return self.logits(x[:, self.begin_ends[k][0]:end], cond)

    def stage_tokens(self, k: int, next_map: torch.Tensor) -> torch.Tensor:
        """Area-resized f_hat of scale k (B, Cvae, pn, pn) → the transformer input of scale k."""
        b = next_map.shape[0]
        begin, end = self.begin_ends[k]
        return self.word_embed(next_map.reshape(b, self.cfg.cvae, -1).transpose(1, 2)) + self.lvl_pos()[:, begin:end]
