"""The next-scale loop (VAR family): one cached transformer pass per scale, guidance on logits, top-k/top-p,
optional Gumbel smoothing, per-image or official batch-order random streams."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from ..engine.errors import InvalidRequest
from ..engine.guidance import BranchRequest, StepInfo, next_scale_time
from ..engine.progress import RunContext
from ..engine.sampling import SampleBatch, SampleOutput
from ..engine.seeding import ImageRNG
from .branches import GuidedDenoiser, Segment


class NextScaleModel(Protocol):
    """What a next-scale family provides to the loop."""

    patch_nums: tuple[int, ...]
    num_classes: int  # the null class index
    vocab_size: int
    latent_channels: int

    def kv_caching(self, enabled: bool) -> None: ...
    def keep_rows(self, index: torch.Tensor) -> None:
        """Keep only these rows of every KV cache (a branch stopped needing some samples)."""
        ...
    def add_rows(self, tokens: torch.Tensor, cond: torch.Tensor) -> None:
        """Append rows to every KV cache from their tokens over every scale so far (a branch started later)."""
        ...
    def first_stage(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...
    def stage_logits(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor: ...
    def prefix_logits(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor: ...
    def codebook(self) -> torch.Tensor: ...
    def next_input(self, k: int, f_hat: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...
    def stage_tokens(self, k: int, next_map: torch.Tensor) -> torch.Tensor: ...
    def decode(self, f_hat: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class EditPlan:
    """Per scale: the source image's token indices ``(1, pn²)`` and which positions to keep ``(pn²,)`` bool.
    ``blend``: the source pixels ``(1, 3, H, W)`` and the pixel keep-mask ``(H, W)`` to paste back after decoding
    (``None``: the decoded tokens only)."""

    indices: list[torch.Tensor]
    keep: list[torch.Tensor]
    source: torch.Tensor | None = None
    pixel_keep: torch.Tensor | None = None

    def blend(self, images: torch.Tensor) -> torch.Tensor:
        """Paste the source back where it is kept. The kept pixels are the source exactly; the seam is softened
        one pixel into the regenerated side (a 3×3 box filter of the mask, never below the mask itself)."""
        if self.source is None or self.pixel_keep is None:
            return images
        keep = self.pixel_keep.to(images.device, images.dtype)[None, None]
        alpha = torch.maximum(torch.nn.functional.avg_pool2d(keep, 3, stride=1, padding=1,
                                                             count_include_pad=False), keep)
        return alpha * self.source.to(images.device, images.dtype) + (1 - alpha) * images


def keep_masks(mask: torch.Tensor, patch_nums: tuple[int, ...]) -> list[torch.Tensor]:
    """A keep-mask (H, W) in [0, 1] → per-scale booleans: bilinear resize to pn×pn, > 0.5. Scales of at most
    three tokens are always kept (the source's global layout), as in the paper's editing demo."""
    m = mask.float()[None, None]
    out = []
    for pn in patch_nums:
        if pn * pn <= 3:
            out.append(torch.ones(pn * pn, dtype=torch.bool))
        else:
            small = torch.nn.functional.interpolate(m, size=(pn, pn), mode="bilinear", align_corners=False)
            out.append((small > 0.5).flatten())
    return out


@dataclass
class NextScaleResult:
    images: torch.Tensor  # (B, 3, H, W) in [-1, 1]
    indices: list[torch.Tensor]  # per scale (B, pn²)
    guided_logits: list[torch.Tensor] = field(default_factory=list)  # per scale, before top-k/top-p
    labels: torch.Tensor | None = None
    nfe: torch.Tensor | None = None  # transformer rows per image (scales × branches), from the guided denoiser
    guidance: dict[str, Any] = field(default_factory=dict)  # what the policy reports about the run


def check_sampling_options(vocab_size: int, top_k: int, top_p: float | None) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise InvalidRequest(f"top_k must be an integer >= 0 (0 disables it), got {top_k!r}.")
    if top_k > vocab_size:
        raise InvalidRequest(f"top_k={top_k} exceeds the vocabulary ({vocab_size} codes); use at most {vocab_size}.")
    if top_p is not None and not (0.0 < float(top_p) <= 1.0):
        raise InvalidRequest(f"top_p must lie in (0, 1] (None disables it), got {top_p!r}.")


def filter_logits_(logits: torch.Tensor, top_k: int, top_p: float | None) -> torch.Tensor:
    """Top-k (ties kept) then top-p (never dropping the largest), in place, as the official sampler does."""
    if top_k > 0:
        kth = logits.topk(top_k, dim=-1, largest=True, sorted=False)[0].amin(dim=-1, keepdim=True)
        logits.masked_fill_(logits < kth, -torch.inf)
    if top_p:
        sorted_logits, order = logits.sort(dim=-1, descending=False)
        drop = sorted_logits.softmax(dim=-1).cumsum_(dim=-1) <= (1 - top_p)
        drop[..., -1:] = False
        logits.masked_fill_(drop.scatter(order.ndim - 1, order, drop), -torch.inf)
    return logits


DRAWS = ("auto", "host", "device")


def draws_on_device(draws: str, device: torch.device) -> bool:
    """``auto``: on the device when it is not the CPU (the host path is the official code's, bit for bit)."""
    if draws not in DRAWS:
        raise InvalidRequest(f"draws must be one of {DRAWS}, got {draws!r}.")
    return draws == "device" or (draws == "auto" and device.type != "cpu")


def inverse_cdf_draw(probs: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """One code per row of ``probs`` ``(B, n, V)`` from uniforms ``(B, n)``, on the tensors' device: the first
    code whose cumulative probability exceeds ``u·total`` (codes of zero probability are never drawn)."""
    cdf = probs.float().cumsum(dim=-1)
    target = uniform.unsqueeze(-1) * cdf[..., -1:]
    idx = torch.searchsorted(cdf, target, right=True).squeeze(-1)
    v = probs.shape[-1]
    last = v - 1 - (probs > 0).flip(-1).int().argmax(dim=-1)  # u·total rounding up to the total: the last code
    return torch.minimum(idx, last)


def sample_next_scale(
    model: NextScaleModel,
    labels: torch.Tensor | None,
    rng: ImageRNG,
    *,
    guidance: Any = None,
    top_k: int = 0,
    top_p: float | None = None,
    more_smooth: bool = False,
    keep_guided_logits: bool = False,
    on_scale: Callable[[int, int, Callable[[], torch.Tensor]], None] | None = None,
    edit: EditPlan | None = None,
    kv_cache: bool = True,
    decode: bool = True,
    draws: str = "host",
) -> NextScaleResult:
    """Generate ``len(rng)`` images.

    ``guidance`` is a branch-protocol policy (official VAR: CFG with the linear ramp, ``(1+t_k)·ℓ_c − t_k·ℓ_u``);
    its branches usually start at the first scale, where their KV caches are filled; later scales may drop rows
    (the stacked rows and every KV cache are compacted) or start a new branch (its rows are prefilled over the
    earlier scales: one block-causal forward, counted as one NFE per earlier scale), but not bring a dropped row
    back.
    ``None`` runs the conditional rows only.
    ``labels=None`` draws labels from ``rng`` first (the official order); a label equal to ``num_classes`` is the
    null class. ``edit``: zero-shot editing, the kept tokens of each scale come from a source image.
    ``on_scale(k, K, preview)`` runs after each scale; ``preview()`` decodes the image so far (VAR's coarse
    scales decode to images). ``kv_cache=False`` recomputes every coarser scale at each step (the
    reference the cache is measured against). ``decode=False`` returns the final f̂ (the VQVAE decoder's input)
    as ``images``. ``draws``: ``host`` moves each scale's probabilities to the CPU and draws there (the official
    order and numbers), ``device`` draws on the model's device by inverse CDF from per-image device streams (no
    transfer, no synchronisation; the same distribution, other numbers), ``auto`` picks device off the CPU.
    """
    pns = model.patch_nums
    num_scales = len(pns)
    if num_scales < 2:
        raise InvalidRequest(f"A next-scale schedule needs at least 2 scales, got {list(pns)}.")
    check_sampling_options(model.vocab_size, top_k, top_p)
    b = len(rng)
    device = model.codebook().device
    on_device = draws_on_device(draws, device)
    if labels is None:
        labels = rng.uniform_labels(model.num_classes)
    labels = labels.to(device)
    denoiser = GuidedDenoiser(model, labels, model.num_classes, guidance, b)
    _check_networks(model, denoiser)
    branches = _checked_requests(denoiser, _info(0, num_scales, b))  # their KV caches start at the first scale
    stacks = _first_stacks(denoiser, branches, labels, b)
    side = pns[-1]
    f_hat = torch.zeros(b, model.latent_channels, side, side, device=device, dtype=stacks[id(model)].cond.dtype)
    indices, kept = [], []
    maps: list[torch.Tensor] = []  # the input map of scales 1, 2, … (per sample): new branches' prefill
    for net in _by_object(denoiser.networks).values():
        net.kv_caching(kv_cache)
    try:
        for k, pn in enumerate(pns):
            ratio = k / (num_scales - 1)
            if k > 0:
                info = _info(k, num_scales, b, preview=lambda f=f_hat: model.decode(f))
                for req in _update_branches(denoiser, branches, stacks, info, b, kv_cache):
                    _start_branch(denoiser, stacks, req, labels, maps, k, kv_cache)
                    branches.append(req)
            logits = denoiser.combine_rows(torch.cat([stack.logits(kv_cache) for stack in stacks.values()]),
                                           [seg for stack in stacks.values() for seg in stack.segments],
                                           _info(k, num_scales, b))
            if keep_guided_logits:
                kept.append(logits.clone())
            filter_logits_(logits, top_k, top_p)
            if on_device:
                idx = inverse_cdf_draw(logits.softmax(dim=-1), rng.device_uniform(logits.shape[1:2], device))
            else:
                idx = rng.multinomial(logits.softmax(dim=-1).cpu().float()).to(device)
            if edit is not None:
                keep, source = edit.keep[k].to(device), edit.indices[k].to(device).expand(b, -1)
                idx = torch.where(keep, source, idx)
            if more_smooth:
                tau = max(0.27 * (1 - ratio * 0.95), 0.005)
                exp = rng.device_exponential(logits.shape[1:], device) if on_device else \
                    rng.exponential(logits.shape[1:]).to(device)
                gumbel = -exp.log()
                soft = ((logits * (1 + ratio) + gumbel) / tau).softmax(dim=-1)
                h_tokens = soft @ model.codebook().unsqueeze(0)
                if edit is not None:
                    h_tokens = torch.where(keep[..., None], model.codebook()[idx], h_tokens)
            else:
                h_tokens = model.codebook()[idx]
            h = h_tokens.transpose(1, 2).reshape(b, model.latent_channels, pn, pn)
            f_hat, next_map = model.next_input(k, f_hat, h)
            indices.append(idx)
            if k != num_scales - 1:
                maps.append(next_map)
                for stack in stacks.values():
                    stack.tokens = stack.net.stage_tokens(k + 1, next_map)[stack.samples()]
            if on_scale is not None:
                on_scale(k + 1, num_scales, lambda f=f_hat: model.decode(f))  # a preview, decoded on demand
    finally:
        for net in _by_object(denoiser.networks).values():
            net.kv_caching(False)
    images = model.decode(f_hat) if decode else f_hat
    if decode and edit is not None:
        images = edit.blend(images)
    return NextScaleResult(images=images, indices=indices, guided_logits=kept, labels=labels, nfe=denoiser.nfe,
                           guidance=denoiser.report())


def _by_object(networks: dict[str, Any]) -> dict[int, Any]:
    """Each network object once, by identity (two names may hold one object)."""
    return {id(net): net for net in networks.values()}


@dataclass
class _Stack:
    """One network's stacked rows, which its KV caches hold: which branch and sample each row serves (the main
    network's start with the conditional rows), their condition vectors, the next scale's input tokens and,
    without a KV cache, the tokens of every scale so far. Stacks are keyed by the network object, so names that
    share one object (a guide loaded once for two policies, or the model itself) share its one KV cache."""

    net: Any
    segments: list[Segment]
    cond: torch.Tensor
    tokens: torch.Tensor
    history: list[torch.Tensor] = field(default_factory=list)

    def samples(self) -> torch.Tensor:
        return torch.cat([seg.samples for seg in self.segments])

    def logits(self, kv_cache: bool) -> torch.Tensor:
        if len(self.tokens) == 0:  # every row dropped: nothing to run
            return self.tokens.new_empty((0, self.tokens.shape[1], self.net.vocab_size))
        if kv_cache:
            return self.net.stage_logits(self.tokens, self.cond)
        self.history.append(self.tokens)
        return self.net.prefix_logits(torch.cat(self.history, dim=1), self.cond)

    def keep(self, index: torch.Tensor, kv_cache: bool) -> None:
        """Only these rows stay: the rows no branch needs any more stop costing (every row state compacted)."""
        self.cond, self.tokens = self.cond[index], self.tokens[index]
        self.history = [h[index] for h in self.history]
        if len(index) == 0:  # a branch started later on this network begins a fresh cache
            self.history = []
            self.net.kv_caching(kv_cache)
        elif kv_cache:
            self.net.keep_rows(index)


def _first_stacks(denoiser: GuidedDenoiser, branches: list[BranchRequest], labels: torch.Tensor,
                  b: int) -> dict[int, _Stack]:
    """Each network's rows at the first scale: the main network's conditional rows and branches, then each other
    network's branches (one forward per network per scale)."""
    conditional = (Segment("cond", torch.arange(b, device=labels.device)), labels)
    parts: dict[int, list[tuple[Segment, torch.Tensor]]] = {id(denoiser.networks["main"]): [conditional]}
    for r in branches:  # each segment with its rows' labels
        net = denoiser.networks[r.network]
        seg = r.rows.to(labels.device).nonzero().flatten()
        parts.setdefault(id(net), []).append((Segment(r.name, seg, r.network),
                                              _branch_labels(r, labels, net.num_classes)[seg]))
    nets, stacks = _by_object(denoiser.networks), {}
    for key, rows in parts.items():
        cond, tokens = nets[key].first_stage(torch.cat([row_labels for _, row_labels in rows]))
        stacks[key] = _Stack(nets[key], [seg for seg, _ in rows], cond, tokens)
    return stacks


def _start_branch(denoiser: GuidedDenoiser, stacks: dict[int, _Stack], req: BranchRequest, labels: torch.Tensor,
                  maps: list[torch.Tensor], k: int, kv_cache: bool) -> None:
    """A branch that starts at scale ``k``: its rows' KV caches are filled over the scales before (one
    block-causal forward, counted as one NFE per earlier scale) on the network it names."""
    net = denoiser.networks[req.network]
    seg = req.rows.to(labels.device).nonzero().flatten()
    new_cond, first = net.first_stage(_branch_labels(req, labels, net.num_classes)[seg])
    past = [first] + [net.stage_tokens(j, maps[j - 1])[seg] for j in range(1, k)]
    tokens = net.stage_tokens(k, maps[k - 1])[seg]
    stack = stacks.get(id(net))
    if stack is None:
        stack = stacks[id(net)] = _Stack(net, [], new_cond[:0], tokens[:0])
    if kv_cache:
        net.add_rows(torch.cat(past, dim=1), new_cond)
    else:
        stack.history = [torch.cat((h, t)) for h, t in zip(stack.history, past, strict=True)] \
            if stack.history else past
    stack.cond = torch.cat((stack.cond, new_cond))
    stack.tokens = torch.cat((stack.tokens, tokens))
    stack.segments.append(Segment(req.name, seg, req.network))
    denoiser.count(seg, k, req.network)


def _info(k: int, num_scales: int, b: int, preview: Callable[[], torch.Tensor] | None = None) -> StepInfo:
    return StepInfo(step=k, num_steps=num_scales, batch_size=b, time=next_scale_time(k, num_scales),
                    prediction_type="logits", cached=True, preview=preview)


def _check_networks(model: NextScaleModel, denoiser: GuidedDenoiser) -> None:
    """A policy's other networks (an autoguidance guide) read the same token maps: each must be a next-scale model
    with the same scales on the same VQVAE codebook."""
    for name, net in denoiser.networks.items():
        if net is model:
            continue
        same = all(hasattr(net, attr) for attr in ("stage_logits", "patch_nums", "codebook")) and \
            tuple(net.patch_nums) == tuple(model.patch_nums) and net.vocab_size == model.vocab_size and \
            torch.equal(net.codebook().to(model.codebook()), model.codebook())
        if not same:
            raise InvalidRequest(f"Guidance policy {denoiser.policy.name!r} evaluates network {name!r}, which is not "
                                 f"a next-scale model on the same scales and VQVAE codebook as the loaded model; a "
                                 f"guide for next-scale sampling must share the model's tokenizer.")


def _checked_requests(denoiser: GuidedDenoiser, info: StepInfo) -> list[BranchRequest]:
    """The policy's branches at this scale, each on a network the run has."""
    requests = denoiser.request(info)
    for r in requests:
        if r.network not in denoiser.networks:
            raise InvalidRequest(f"Guidance policy {denoiser.policy.name!r} evaluates network {r.network!r}; this "
                                 f"run has {sorted(denoiser.networks)}.")
    return requests


def _branch_labels(req: BranchRequest, labels: torch.Tensor, null_class: int) -> torch.Tensor:
    if req.null:
        return torch.full_like(labels, null_class)
    return req.labels.to(labels.device) if req.labels is not None else labels


def _update_branches(denoiser: GuidedDenoiser, branches: list[BranchRequest], stacks: dict[int, _Stack],
                     info: StepInfo, b: int, kv_cache: bool) -> list[BranchRequest]:
    """The policy's branches at this scale: an existing one may keep fewer rows than before, never more (a
    dropped row's KV cache is gone) — each network's rows are compacted in place; a new one is returned to be
    started (prefilled)."""
    if denoiser.policy is None:
        return []
    requests = _checked_requests(denoiser, info)
    wanted = {r.name: r.rows for r in requests}
    known = {r.name for r in branches}
    for stack in stacks.values():
        keep, out, offset = [], [], 0
        for seg in stack.segments:
            if seg.name == "cond":
                mask = torch.ones(len(seg.samples), dtype=torch.bool, device=seg.samples.device)
            else:
                rows = wanted.get(seg.name, torch.zeros(b, dtype=torch.bool)).to(seg.samples.device)
                if bool((rows & ~_mask(seg.samples, b)).any()):
                    raise InvalidRequest(f"Guidance policy {denoiser.policy.name!r} asks branch {seg.name!r} for "
                                         f"rows it dropped earlier; a next-scale model cannot bring a row's KV "
                                         f"cache back.")
                mask = rows[seg.samples]
            keep.append(offset + mask.nonzero().flatten())
            offset += len(seg.samples)
            out.append(seg._replace(samples=seg.samples[mask]))
        index = torch.cat(keep)
        if len(index) < offset:
            stack.keep(index, kv_cache)
        stack.segments = out
    return [r for r in requests if r.name not in known and bool(r.rows.any())]


def _mask(seg: torch.Tensor, b: int) -> torch.Tensor:
    mask = torch.zeros(b, dtype=torch.bool, device=seg.device)
    mask[seg] = True
    return mask


class NextScaleSampler:
    """The engine-facing sampler: guidance from the request's policy, options top_k / top_p / more_smooth."""

    def __init__(self, top_k: int = 0, top_p: float | None = None, more_smooth: bool = False,
                 draws: str = "auto") -> None:
        if top_p is not None and not isinstance(top_p, (int, float)):
            raise InvalidRequest(f"top_p must be a number in (0, 1], got {top_p!r}.")
        self.top_k, self.top_p, self.more_smooth, self.draws = top_k, top_p, bool(more_smooth), draws

    def sample(self, model: Any, batch: SampleBatch, ctx: RunContext) -> SampleOutput:
        def on_scale(k: int, num_scales: int, preview: Callable[[], torch.Tensor]) -> None:
            ctx.step_done(k, num_scales, preview=preview)

        ctx.check()
        out = sample_next_scale(model, batch.labels, batch.rng, guidance=batch.policy, top_k=self.top_k,
                                top_p=self.top_p, more_smooth=self.more_smooth, on_scale=on_scale,
                                edit=batch.options.get("edit"), decode=batch.decode, draws=self.draws)
        telemetry: dict[str, Any] = {"indices": [i.cpu() for i in out.indices]}
        if out.guidance:
            telemetry["guidance"] = out.guidance
        return SampleOutput(images=out.images, nfe=out.nfe, telemetry=telemetry)

