"""The sampler's half of the branch protocol: the guided denoiser every loop calls; it packs every requested row
into one forward per network, scatters, combines and counts NFE."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import torch

from ..engine.errors import GenloomError, InvalidRequest, PluginError
from ..engine.guidance import BranchOutputs, BranchRequest, StepInfo

# forward(x_rows, label_rows, row_index) -> outputs for those rows; row_index says which sample each row is
PackedForward = Callable[[torch.Tensor, "torch.Tensor | None", torch.Tensor], torch.Tensor]


class Segment(NamedTuple):
    """A run of stacked rows of one branch (``"cond"``: the conditional rows): the samples they serve, in order,
    and the network that evaluated them."""

    name: str
    samples: torch.Tensor
    network: str = "main"


def packed_forward(forward: PackedForward | Mapping[str, PackedForward], x: torch.Tensor,
                   labels: torch.Tensor | None, null_class: int | None, requests: list[BranchRequest],
                   info: StepInfo, with_cond: bool = True) -> tuple[BranchOutputs, dict[str, torch.Tensor]]:
    """One call per network: the conditional rows and the main network's branches in one forward, each other
    network's branches in one forward of that network. Returns the outputs per branch (NaN where a branch
    skipped a row) and, per network, how many rows each sample cost (its NFE for this evaluation)."""
    forwards = dict(forward) if isinstance(forward, Mapping) else {"main": forward}
    b = x.shape[0]
    every = torch.arange(b, device=x.device)
    groups: dict[str, list[tuple[str, torch.Tensor, torch.Tensor | None]]] = \
        {"main": [("cond", every, labels)]} if with_cond else {}
    names = {"cond"}
    for req in requests:
        if req.rows.shape != (b,):
            raise InvalidRequest(f"Branch {req.name!r} has a row mask of shape {tuple(req.rows.shape)}, batch is {b}.")
        if req.name in names:
            raise InvalidRequest(f"Branch {req.name!r} was requested twice in one step.")
        if req.network not in forwards:
            raise InvalidRequest(f"Branch {req.name!r} asks for network {req.network!r}; this run has "
                                 f"{sorted(forwards)}.")
        names.add(req.name)
        rows = req.rows.to(x.device).nonzero().flatten()
        groups.setdefault(req.network, []).append((req.name, rows, _row_labels(req, rows, labels, null_class)))
    outputs, masks, costs = {}, {}, {}
    for network, spans in groups.items():
        all_rows = torch.cat([rows for _, rows, _ in spans])
        row_labels = torch.cat([lab for _, _, lab in spans]) if labels is not None else None
        out = forwards[network](x[all_rows], row_labels, all_rows)
        offset = 0
        for name, rows, _ in spans:
            full = torch.full((b,) + tuple(out.shape[1:]), torch.nan, device=out.device, dtype=out.dtype)
            full[rows] = out[offset:offset + len(rows)]
            offset += len(rows)
            mask = torch.zeros(b, dtype=torch.bool, device=x.device)
            mask[rows] = True
            outputs[name], masks[name] = full, mask
        costs[network] = torch.bincount(all_rows.cpu(), minlength=b)
    return BranchOutputs(outputs, masks, x, info, labels), costs


def _row_labels(req: BranchRequest, rows: torch.Tensor, labels: torch.Tensor | None,
                null_class: int | None) -> torch.Tensor | None:
    if labels is None:
        if req.null or req.labels is not None:
            raise InvalidRequest(f"Branch {req.name!r} changes the label, but the model is unconditional.")
        return None
    if req.null:
        if null_class is None:
            raise InvalidRequest(f"Branch {req.name!r} needs a null class; this model has none.")
        return torch.full_like(rows, null_class)
    return (req.labels.to(labels.device) if req.labels is not None else labels)[rows]


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
    started at the first scale (one KV cache per branch; rows may only be dropped later), hand it their stacked
    outputs through :meth:`combine_rows`."""

    def __init__(self, model: Any, labels: torch.Tensor | None, null_class: int | None, policy: Any,
                 batch_size: int) -> None:
        self.labels, self.null_class, self.policy = labels, null_class, policy
        self.networks = {"main": model, **dict(getattr(policy, "networks", {}) or {})}
        self.state = policy.init_state(batch_size) if policy is not None else None
        self.nfe = torch.zeros(batch_size, dtype=torch.long)
        self.nfe_by_network = {name: torch.zeros(batch_size, dtype=torch.long) for name in self.networks}
        self.evaluations = 0
        self.outputs: BranchOutputs | None = None

    def __call__(self, forward_for: Callable[[Any], PackedForward], x: torch.Tensor, info: StepInfo) -> torch.Tensor:
        """``forward_for(network)`` is the loop's way of running one network at this step on some rows."""
        requests = call_policy(self.policy, "request", info, self.state) if self.policy is not None else []
        self.outputs = self._evaluate(forward_for, x, info, requests, with_cond=True)
        if self.policy is not None and hasattr(self.policy, "refine"):
            more = call_policy(self.policy, "refine", info, self.outputs, self.state)
            if more:
                second = self._evaluate(forward_for, x, info, more, with_cond=False)
                self.outputs = self.outputs.merged(second)
        self.evaluations += 1
        if self.policy is None:
            return self.outputs["cond"]
        return call_policy(self.policy, "combine", info, self.outputs, self.state)

    def _evaluate(self, forward_for: Callable[[Any], PackedForward], x: torch.Tensor, info: StepInfo,
                  requests: list[BranchRequest], with_cond: bool) -> BranchOutputs:
        wanted = ({"main"} if with_cond else set()) | {r.network for r in requests}
        forwards = {name: forward_for(net) for name, net in self.networks.items() if name in wanted}
        outputs, costs = packed_forward(forwards, x, self.labels, self.null_class, requests, info, with_cond)
        for name, cost in costs.items():
            self._add_nfe(name, cost)
        return outputs

    def count(self, samples: torch.Tensor, evaluations: int, network: str = "main") -> None:
        """Add network evaluations of one network for these samples (a next-scale branch's prefill)."""
        self._add_nfe(network, torch.bincount(samples.cpu(), minlength=len(self.nfe)) * evaluations)

    def _add_nfe(self, network: str, cost: torch.Tensor) -> None:
        self.nfe_by_network[network] += cost
        self.nfe += cost

    def report(self) -> dict[str, Any]:
        """What the policy records about the run (``report(state)``), for the result's telemetry."""
        if self.policy is None or not hasattr(self.policy, "report"):
            return {}
        return call_policy(self.policy, "report", self.state)

    def request(self, info: StepInfo) -> list[BranchRequest]:
        """The policy's branches now (next-scale loops ask once, at the first scale)."""
        return call_policy(self.policy, "request", info, self.state) if self.policy is not None else []

    def combine_rows(self, stacked: torch.Tensor, segments: list[Segment], info: StepInfo) -> torch.Tensor:
        """Outputs stacked as segments — the conditional rows, then each branch's rows, network by network — →
        the guided output; a branch's rows it did not evaluate are NaN, and each row counts one NFE of its
        network."""
        b = info.batch_size
        outputs, masks, offset = {}, {}, 0
        for name, samples, network in segments:
            part = stacked[offset:offset + len(samples)]
            offset += len(samples)
            full = part if name == "cond" else \
                torch.full((b,) + tuple(part.shape[1:]), torch.nan, device=part.device, dtype=part.dtype)
            if name != "cond":
                full[samples] = part
            mask = torch.zeros(b, dtype=torch.bool, device=stacked.device)
            mask[samples] = True
            outputs[name], masks[name] = full, mask
            self._add_nfe(network, torch.bincount(samples.cpu(), minlength=b))
        self.evaluations += 1
        if self.policy is None:
            return outputs["cond"]
        self.outputs = BranchOutputs(outputs, masks, outputs["cond"], info, self.labels)
        return call_policy(self.policy, "combine", info, self.outputs, self.state)
