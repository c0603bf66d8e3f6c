"""What the UI does, without the UI: load models once, run jobs with a per-model concurrency limit, stream
progress and previews, cancel within one step, and turn bad input into readable messages.

Kept free of Gradio so it can be tested directly; :mod:`genloom.ui.app` only lays out widgets around it.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.errors import GenloomError, InvalidRequest
from ..engine.options import parse_key_values, route_options
from ..engine.pipeline import CALL_ARGUMENTS
from ..engine.progress import CancelToken
from ..engine.stacking import policy_spec

MAX_STEPS = 1000
MAX_IMAGES = 64
DEFAULT_MODEL = "var-shapes"
FAILED_LOAD_TTL = 60.0  # seconds a failed model load is answered from memory instead of retried


class SessionJobs:
    """The cancel tokens of one browser session (or API caller): Cancel stops every job it started, queued or
    running, so a double click on Generate leaves nothing uncancellable."""

    def __init__(self) -> None:
        self._tokens: list[CancelToken] = []
        self._lock = threading.Lock()
        self.started = 0  # jobs this session started: the status shows "#N" so runs are told apart

    def __deepcopy__(self, memo: dict[int, Any]) -> SessionJobs:
        return SessionJobs()  # Gradio copies a State's initial value per session: each gets its own

    def new_token(self) -> CancelToken:
        token = CancelToken()
        with self._lock:
            self._tokens = [t for t in self._tokens if not t.cancelled] + [token]
            self.started += 1
        return token

    def forget(self, token: CancelToken) -> None:
        """A job that ended leaves the list, so Cancel counts only the jobs still queued or running."""
        with self._lock:
            self._tokens = [t for t in self._tokens if t is not token]

    def cancel_all(self) -> int:
        with self._lock:
            tokens, self._tokens = self._tokens, []
        for token in tokens:
            token.cancel()
        return len(tokens)


@dataclass
class JobUpdate:
    """One streamed update: a progress fraction, optional preview images, and the final result when done."""

    fraction: float
    message: str
    previews: list[Any] = field(default_factory=list)
    result: Any = None


def parse_options(text: str | None) -> dict[str, Any]:
    """``key=value`` lines (values as JSON when they parse) → keyword arguments for the policy or sampler."""
    return parse_key_values((text or "").splitlines(), "option line")


class GenerationService:
    """One per app. Pipelines are cached per model; each model admits ``per_model`` jobs at a time."""

    def __init__(self, engine: Any = None, per_model: int = 1, weights_root: str | None = None,
                 any_weights_path: bool = True) -> None:
        """``weights_root``: user-typed weights/VAE paths must lie inside it; ``any_weights_path=False`` without
        a root refuses typed paths (an app served beyond loopback must not read any file the server can)."""
        if engine is None:
            from ..engine.engine import default_engine

            engine = default_engine()
        self.engine, self.per_model = engine, per_model
        self.weights_root = Path(weights_root).resolve() if weights_root else None
        self.any_weights_path = any_weights_path
        self._pipes: dict[str, Any] = {}
        self._gates: dict[str, threading.Semaphore] = {}
        self._failures: dict[str, tuple[float, GenloomError]] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()  # guards the dicts only, never held while a model loads
        self.history: collections.deque[tuple[str, str]] = collections.deque(maxlen=100)  # (model, outcome)

    # --- registry views --------------------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        """The default model first, then the others that load offline here (embedded weights), then the rest."""
        specs = list(self.engine.models.values())
        embedded = [s.name for s in specs if (s.default_weights or "").startswith("asset:")]
        ordered = embedded + sorted(s.name for s in specs if s.name not in embedded)
        return sorted(ordered, key=lambda name: name != DEFAULT_MODEL)  # stable: only the default moves

    def class_names(self, model: str) -> list[str]:
        spec = self.spec(model)
        return list(spec.class_names) or [str(i) for i in range(spec.num_classes)]

    def policies_for(self, model: str) -> list[str]:
        spec = self.engine.models[model]
        names = sorted(p.name for p in self.engine.guidance.values() if spec.paradigm in p.paradigms)
        if spec.default_guidance and spec.default_guidance not in names:  # the model's own stack
            names.insert(0, spec.default_guidance)
        return ["none"] + names

    def samplers_for(self, model: str) -> list[str]:
        spec = self.engine.models[model]
        return sorted(s.name for s in self.engine.samplers.values() if s.paradigm is spec.paradigm)

    def option_fields(self, policy: str | None, sampler: str | None) -> list[dict[str, Any]]:
        """The form fields of a policy's and a sampler's declared options (what the options box accepts)."""
        fields = []
        for kind, spec in (("policy", policy_spec(self.engine.guidance, policy)),
                           ("sampler", self.engine.samplers.get(sampler or ""))):
            if spec is not None:
                fields += [dict(field.form_field(), owner=f"{kind} {spec.name}") for field in spec.options]
        return fields

    def options_placeholder(self, policy: str | None, sampler: str | None) -> str:
        """One ``key=default`` line per declared option: the options box's hint, derived from the declarations."""
        return "\n".join(f"{f['name']}={'' if f['default'] is None else f['default']}"
                         for f in self.option_fields(policy, sampler))

    def policy_help(self, policy: str) -> str:
        if policy in (None, "", "none"):
            return "No guidance: one network evaluation per step."
        spec = policy_spec(self.engine.guidance, policy)
        if spec is None:
            return f"Unknown guidance {policy!r}: pick a policy, or join several with '+' (e.g. cfg+gfcg)."
        lines = [f"**{spec.name}** — {spec.description}"] + [f"- `{o.describe()}`" for o in spec.options]
        return "\n".join(lines)

    def plugin_rows(self) -> list[list[str]]:
        rows = []
        for r in self.engine.plugin_report:
            what = ", ".join(f"{k}: {', '.join(v)}" for k, v in r.contributions.items() if v)
            rows.append([r.name, r.version or "", r.source, r.status, what, r.error or ""])
        return rows

    # --- jobs -------------------------------------------------------------------------------------------------
    def spec(self, model: str, weights: str | None = None, vae: str | None = None) -> Any:
        """The loaded model's own spec when it is loaded (classes, size and steps as the weights say), else the
        registered one."""
        with self._lock:
            pipe = self._pipes.get(_key(model, weights, vae))
        return pipe.spec if pipe is not None else self.engine.models[model]

    def is_loaded(self, model: str, weights: str | None = None, vae: str | None = None) -> bool:
        with self._lock:
            return _key(model, weights, vae) in self._pipes

    def checked_path(self, text: str | None, what: str) -> str | None:
        """A weights or VAE path typed into the page: it must exist, and lie inside ``weights_root`` when one is
        set; refused outright when the app is served beyond loopback without a root."""
        if not text or not text.strip():
            return None
        path = Path(text.strip()).expanduser().resolve()
        if self.weights_root is None and not self.any_weights_path:
            raise InvalidRequest(f"This app does not load {what} files typed into the page; start it with "
                                 f"--weights-root DIR to allow files from DIR.")
        if self.weights_root is not None and not path.is_relative_to(self.weights_root):
            raise InvalidRequest(f"The {what} file must lie inside {str(self.weights_root)!r}.")
        if not path.is_file():
            raise InvalidRequest(f"The {what} file {text.strip()!r} does not exist on the server.")
        return str(path)

    def pipe(self, model: str, weights: str | None = None, vae: str | None = None) -> Any:
        """The model's pipeline, loaded once per (model, weights, vae). Loads of different models run in
        parallel (one lock per key); a failed load is remembered for ``FAILED_LOAD_TTL`` seconds and reported
        again without retrying."""
        key = _key(model, weights, vae)
        with self._lock:
            if key in self._pipes:
                return self._pipes[key]
            lock = self._load_locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._pipes:
                    return self._pipes[key]
                failed = self._failures.get(key)
            if failed is not None and time.monotonic() - failed[0] < FAILED_LOAD_TTL:
                raise failed[1]
            try:
                pipe = self.engine.load(model, weights=weights, **({"vae": vae} if vae else {}))
            except GenloomError as exc:
                with self._lock:
                    self._failures[key] = (time.monotonic(), exc)
                raise
            with self._lock:
                self._failures.pop(key, None)
                self._pipes[key] = pipe
                self._gates[key] = threading.Semaphore(self.per_model)
            return pipe

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
                kwargs["guidance_scale"] = _number(scale, "Guidance scale")
        extra = parse_options(options)
        policy = policy_spec(self.engine.guidance, guidance)
        if policy is None and guidance in (None, "") and spec.default_guidance:
            policy = policy_spec(self.engine.guidance, spec.default_guidance)  # a stack is a default too
        sampler_spec = self.engine.samplers.get(sampler or spec.default_sampler or "")
        route_options(extra, policy, sampler_spec, reserved=CALL_ARGUMENTS)  # typed errors, before any work
        kwargs.update(extra)
        return kwargs

    def run(self, model: str, kwargs: dict[str, Any], cancel: CancelToken | None = None,
            previews: bool = True, weights: str | None = None, vae: str | None = None) -> Iterator[JobUpdate]:
        """Run one job in a worker thread and stream its progress; the last update carries the result. Closing
        the stream early (a client that goes away or cancels) cancels the job."""
        cancel = cancel or CancelToken()
        if not self.is_loaded(model, weights, vae):
            yield JobUpdate(0.0, f"loading {model}…")
        pipe = self.pipe(model, weights, vae)
        key = _key(model, weights, vae)
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
            gate = self._gates[key]
            with gate:
                try:
                    cancel.raise_if_cancelled()  # cancelled while queued: never starts
                    updates.put(JobUpdate(0.0, "running…"))
                    result = pipe(progress=progress, cancel=cancel, **kwargs)
                    self.history.append((model, "done"))
                    updates.put(JobUpdate(1.0, "done", result=result))
                except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                    self.history.append((model, "cancelled" if cancel.cancelled else "failed"))
                    updates.put(exc)

        updates.put(JobUpdate(0.0, "queued…"))  # until the model's gate lets the job in
        threading.Thread(target=work, daemon=True).start()
        finished = False
        try:
            while True:
                item = updates.get()
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                yield item
                if item.result is not None:
                    finished = True
                    return
        finally:
            if not finished:
                cancel.cancel()

    def run_to_end(self, model: str, kwargs: dict[str, Any], cancel: CancelToken | None = None,
                   weights: str | None = None, vae: str | None = None) -> Any:
        for update in self.run(model, kwargs, cancel, previews=False, weights=weights, vae=vae):
            if update.result is not None:
                return update.result
        raise GenloomError("the job ended without a result")


def details(result: Any) -> dict[str, Any]:
    """What a person wants to see about a finished run."""
    nfe = result.nfe
    return {"images": len(nfe), "NFE per image": nfe, "mean NFE": sum(nfe) / max(len(nfe), 1),
            "time (s)": round(result.timings["total_s"], 3), "per image (s)": round(result.timings["per_image_s"], 4),
            "seeds": result.seeds, "labels": result.labels, "request": result.manifest["request"]}


def _key(model: str, weights: str | None, vae: str | None) -> str:
    return model if not (weights or vae) else f"{model}|{weights or ''}|{vae or ''}"


def _number(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{what} must be a number, got {value!r}.") from None
    return number


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{what} must be a whole number, got {value!r}.") from None
    if number != int(number) or not lo <= number <= hi:
        raise InvalidRequest(f"{what} must be a whole number from {lo} to {hi}, got {value!r}.")
    return int(number)


def _to_pil(images: Any) -> list[Any]:
    from ..engine.images import to_pil

    return to_pil(images)
