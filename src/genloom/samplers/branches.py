"""The sampler's half of the branch protocol: pack every requested row into one forward, scatter, combine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..engine.errors import GenloomError, InvalidRequest, PluginError
from ..engine.guidance import BranchOutputs, BranchRequest, StepInfo

# forward(x_rows, label_rows, row_index) -> outputs for those rows; row_index says which sample each row is
PackedForward = Callable[[torch.Tensor, "torch.Tensor | None", torch.Tensor], torch.Tensor]


def packed_forward(forward: PackedForward, x: torch.Tensor, labels: torch.Tensor | None, null_class: int | None,
                   requests: list[BranchRequest], info: StepInfo) -> tuple[BranchOutputs, torch.Tensor]:
    """One network call for the conditional rows and every requested branch; returns the outputs per branch
    (NaN where a branch skipped a row) and how many rows each sample cost (its NFE for this evaluation)."""
    b = x.shape[0]
    index = [torch.arange(b, device=x.device)]
    row_labels = [labels] if labels is not None else []
    spans: list[tuple[str, torch.Tensor]] = [("cond", index[0])]
    for req in requests:
        if req.rows.shape != (b,):
            raise InvalidRequest(f"Branch {req.name!r} has a row mask of shape {tuple(req.rows.shape)}, batch is {b}.")
        if any(name == req.name for name, _ in spans):
            raise InvalidRequest(f"Branch {req.name!r} was requested twice in one step.")
        rows = req.rows.to(x.device).nonzero().flatten()
        spans.append((req.name, rows))
        index.append(rows)
        if labels is None:
            if req.null or req.labels is not None:
                raise InvalidRequest(f"Branch {req.name!r} changes the label, but the model is unconditional.")
            continue
        if req.null:
            if null_class is None:
                raise InvalidRequest(f"Branch {req.name!r} needs a null class; this model has none.")
            row_labels.append(torch.full_like(rows, null_class))
        else:
            row_labels.append((req.labels.to(labels.device) if req.labels is not None else labels)[rows])
    all_rows = torch.cat(index)
    out = forward(x[all_rows], torch.cat(row_labels) if labels is not None else None, all_rows)
    outputs, masks, offset = {}, {}, 0
    for name, rows in spans:
        full = torch.full((b,) + tuple(out.shape[1:]), torch.nan, device=out.device, dtype=out.dtype)
        full[rows] = out[offset:offset + len(rows)]
        offset += len(rows)
        mask = torch.zeros(b, dtype=torch.bool, device=x.device)
        mask[rows] = True
        outputs[name], masks[name] = full, mask
    nfe = torch.bincount(all_rows.cpu(), minlength=b)
    return BranchOutputs(outputs, masks, x, info), nfe


def guided(forward: PackedForward, x: torch.Tensor, labels: torch.Tensor | None, null_class: int | None,
           policy: Any, state: Any, info: StepInfo) -> tuple[torch.Tensor, torch.Tensor, BranchOutputs]:
    """Ask the policy, evaluate, combine. A policy that raises is named in a :class:`PluginError`."""
    requests = call_policy(policy, "request", info, state) if policy is not None else []
    outputs, nfe = packed_forward(forward, x, labels, null_class, requests, info)
    pred = call_policy(policy, "combine", info, outputs, state) if policy is not None else outputs["cond"]
    return pred, nfe, outputs


def call_policy(policy: Any, method: str, *args: Any) -> Any:
    try:
        return getattr(policy, method)(*args)
    except GenloomError:
        raise
    except Exception as exc:  # noqa: BLE001 - a policy plugin failing mid-run is reported by name
        name = getattr(policy, "name", type(policy).__name__)
        raise PluginError(f"Guidance policy {name!r} raised {type(exc).__name__} in {method}(): {exc}") from exc


class GuidedDenoiser:
    """The one guided evaluation every sampling loop calls: the loop says where it is (:class:`StepInfo`) and
    how to run the network on some rows; the denoiser asks the policy for branches, packs them into one forward,
    combines, and counts each image's NFE — so every sampler's NFE comes from here.

    Diffusion loops call it with a packed forward (any rows, any branches); next-scale loops, whose branches are
    fixed at the first scale (one KV cache per branch), hand it the stacked outputs of every branch through
    :meth:`combine_stacked`."""

    def __init__(self, labels: torch.Tensor | None, null_class: int | None, policy: Any, batch_size: int) -> None:
        self.labels, self.null_class, self.policy = labels, null_class, policy
        self.state = policy.init_state(batch_size) if policy is not None else None
        self.nfe = torch.zeros(batch_size, dtype=torch.long)
        self.evaluations = 0
        self.outputs: BranchOutputs | None = None

    def __call__(self, forward: PackedForward, x: torch.Tensor, info: StepInfo) -> torch.Tensor:
        pred, used, self.outputs = guided(forward, x, self.labels, self.null_class, self.policy, self.state, info)
        self.nfe += used
        self.evaluations += 1
        return pred

    def request(self, info: StepInfo) -> list[BranchRequest]:
        """The policy's branches now (next-scale loops ask once, at the first scale)."""
        return call_policy(self.policy, "request", info, self.state) if self.policy is not None else []

    def combine_stacked(self, stacked: torch.Tensor, names: list[str], info: StepInfo) -> torch.Tensor:
        """Outputs of the conditional rows then each branch's, every branch on every row, → the guided output."""
        b = info.batch_size
        chunks = stacked.split(b)
        self.nfe += len(chunks)
        self.evaluations += 1
        if self.policy is None:
            return chunks[0]
        every = torch.ones(b, dtype=torch.bool, device=stacked.device)
        outputs = dict(zip(["cond", *names], chunks))
        self.outputs = BranchOutputs(outputs, {n: every for n in outputs}, chunks[0], info)
        return call_policy(self.policy, "combine", info, self.outputs, self.state)
