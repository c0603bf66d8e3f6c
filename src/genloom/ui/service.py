"""What the UI does, without the UI: load models once, run jobs with a per-model concurrency limit, stream
progress and previews, cancel within one step, and turn bad input into readable messages.

Kept free of Gradio so it can be tested directly; :mod:`genloom.ui.app` only lays out widgets around it.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..engine.errors import GenloomError, InvalidRequest
from ..engine.progress import CancelToken

MAX_STEPS = 1000
MAX_IMAGES = 64


@dataclass
class JobUpdate:
    """One streamed update: a progress fraction, optional preview images, and the final result when done."""

    fraction: float
    message: str
    previews: list[Any] = field(default_factory=list)
    result: Any = None


def parse_options(text: str | None) -> dict[str, Any]:
    """``key=value`` lines (values as JSON when they parse) → keyword arguments for the policy or sampler."""
    out: dict[str, Any] = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, raw = line.partition("=")
        if not sep or not key.strip():
            raise InvalidRequest(f"Option line {line!r} is not key=value.")
        try:
            out[key.strip()] = json.loads(raw.strip())
        except json.JSONDecodeError:
            out[key.strip()] = raw.strip()
    return out


class GenerationService:
    """One per app. Pipelines are cached per model; each model admits ``per_model`` jobs at a time."""

    def __init__(self, engine: Any = None, per_model: int = 1) -> None:
        if engine is None:
            from ..engine.engine import default_engine

            engine = default_engine()
        self.engine, self.per_model = engine, per_model
        self._pipes: dict[str, Any] = {}
        self._gates: dict[str, threading.Semaphore] = {}
        self._lock = threading.Lock()

    # --- registry views --------------------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        """Models that load offline here (embedded weights) first, then the rest."""
        specs = list(self.engine.models.values())
        embedded = [s.name for s in specs if (s.default_weights or "").startswith("asset:")]
        return embedded + sorted(s.name for s in specs if s.name not in embedded)

    def class_names(self, model: str) -> list[str]:
        spec = self.engine.models[model]
        return list(spec.class_names) or [str(i) for i in range(spec.num_classes)]

    def policies_for(self, model: str) -> list[str]:
        spec = self.engine.models[model]
        return ["none"] + sorted(p.name for p in self.engine.guidance.values() if spec.paradigm in p.paradigms)

    def samplers_for(self, model: str) -> list[str]:
        spec = self.engine.models[model]
        return sorted(s.name for s in self.engine.samplers.values() if s.paradigm is spec.paradigm)

    def policy_help(self, policy: str) -> str:
        if policy in (None, "", "none"):
            return "No guidance: one network evaluation per step."
        spec = self.engine.guidance[policy]
        lines = [f"**{spec.name}** — {spec.description}"] + [f"- `{o.describe()}`" for o in spec.options]
        return "\n".join(lines)

    def plugin_rows(self) -> list[list[str]]:
        rows = []
        for r in self.engine.plugin_report:
            what = ", ".join(f"{k}: {', '.join(v)}" for k, v in r.contributions.items() if v)
            rows.append([r.name, r.version or "", r.source, r.status, what, r.error or ""])
        return rows

    # --- jobs -------------------------------------------------------------------------------------------------
    def pipe(self, model: str) -> Any:
        with self._lock:
            if model not in self._pipes:
                self._pipes[model] = self.engine.load(model)
                self._gates[model] = threading.Semaphore(self.per_model)
            return self._pipes[model]

    def request(self, model: str, classes: list[str] | None, num_images: Any, seed: Any, guidance: str | None,
                scale: Any, sampler: str | None, steps: Any, options: str | None) -> dict[str, Any]:
        """UI fields → keyword arguments for ``Pipeline.__call__`` (typed errors for what cannot be right)."""
        if not model:
            raise InvalidRequest("Pick a model.")
        spec = self.engine.models[model]
        n = _int(num_images, "Number of images", 1, MAX_IMAGES)
        kwargs: dict[str, Any] = {"seed": _int(seed, "Seed", 0, 2 ** 63 - 1), "output_type": "pil"}
        if spec.num_classes:
            if not classes:
                raise InvalidRequest("Pick at least one class.")
            kwargs["labels"] = [classes[i % len(classes)] for i in range(n)]
        else:
            kwargs["num_images"] = n
        if steps not in (None, "", 0):  # a cleared number field arrives as 0: the model's default
            kwargs["steps"] = _int(steps, "Steps", 1, MAX_STEPS)
        if sampler:
            kwargs["sampler"] = sampler
        if guidance:
            kwargs["guidance"] = guidance
            if guidance != "none" and scale not in (None, ""):
                kwargs["guidance_scale"] = float(scale)
        kwargs.update(parse_options(options))
        return kwargs

    def run(self, model: str, kwargs: dict[str, Any], cancel: CancelToken | None = None,
            previews: bool = True) -> Iterator[JobUpdate]:
        """Run one job in a worker thread and stream its progress; the last update carries the result."""
        pipe = self.pipe(model)
        updates: queue.Queue[Any] = queue.Queue()
        preview_every = 0.5  # seconds between decoded previews
        last = [0.0]

        def progress(event: Any) -> None:
            shots = []
            if previews and event.preview is not None and time.perf_counter() - last[0] > preview_every:
                last[0] = time.perf_counter()
                shots = _to_pil(event.preview())
            updates.put(JobUpdate(event.fraction, f"step {event.step}/{event.num_steps}"
                                  + (f", batch {event.batch + 1}/{event.num_batches}" if event.num_batches > 1 else ""),
                                  shots))

        def work() -> None:
            gate = self._gates[model]
            with gate:
                try:
                    result = pipe(progress=progress, cancel=cancel, **kwargs)
                    updates.put(JobUpdate(1.0, "done", result=result))
                except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                    updates.put(exc)

        updates.put(JobUpdate(0.0, "queued…"))  # until the model's gate lets the job in
        threading.Thread(target=work, daemon=True).start()
        while True:
            item = updates.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if item.result is not None:
                return

    def run_to_end(self, model: str, kwargs: dict[str, Any], cancel: CancelToken | None = None) -> Any:
        for update in self.run(model, kwargs, cancel, previews=False):
            if update.result is not None:
                return update.result
        raise GenloomError("the job ended without a result")


def details(result: Any) -> dict[str, Any]:
    """What a person wants to see about a finished run."""
    nfe = result.nfe
    return {"images": len(nfe), "NFE per image": nfe, "mean NFE": sum(nfe) / max(len(nfe), 1),
            "time (s)": round(result.timings["total_s"], 3), "per image (s)": round(result.timings["per_image_s"], 4),
            "seeds": result.seeds, "labels": result.labels, "request": result.manifest["request"]}


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{what} must be a whole number, got {value!r}.") from None
    if number != int(number) or not lo <= number <= hi:
        raise InvalidRequest(f"{what} must be a whole number from {lo} to {hi}, got {value!r}.")
    return int(number)


def _to_pil(images: Any) -> list[Any]:
    from ..engine.result import to_pil

    return to_pil((images.detach().float().cpu().clamp(-1, 1) + 1) / 2)
