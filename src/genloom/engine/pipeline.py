"""A loaded model ready to generate: validates the request, batches, seeds, runs the sampler."""

from __future__ import annotations

import inspect
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import torch

from .errors import GenloomError, InvalidRequest, PluginError
from .guidance import GuidanceContext
from .model import GenerativeModel
from .progress import CancelToken, ProgressCallback, RunContext
from .request import GenerationRequest, build_request
from .result import GenerationResult, convert_images
from .sampling import SampleBatch, SampleOutput
from .seeding import ImageRNG
from .specs import ClassifierSpec, ModelSpec, Paradigm
from .weights import ResolvedWeights


class Registries(Protocol):
    """What a pipeline needs of its engine: the sampler and policy registries (no import of the engine)."""

    samplers: Any
    guidance: Any


#: Pipeline.__call__'s own arguments: never policy or sampler options
CALL_ARGUMENTS = ("labels", "num_images", "seed", "guidance", "guidance_scale", "sampler", "steps", "batch_size",
                  "progress", "cancel", "output_type", "rng", "batch_invariant", "latents", "conditioning")


def _check_callables(progress: Any, cancel: Any) -> None:
    if progress is not None and not callable(progress):
        raise InvalidRequest(f"progress must be a callable taking a ProgressEvent, got {type(progress).__name__}.")
    if cancel is not None and not isinstance(cancel, CancelToken):
        raise InvalidRequest(f"cancel must be a genloom.CancelToken, got {type(cancel).__name__}.")


@dataclass(frozen=True)
class LoadOptions:
    """What a ``ModelSpec`` (or ``ClassifierSpec``) factory receives."""

    name: str
    spec: ModelSpec | ClassifierSpec
    weights: ResolvedWeights | None
    device: torch.device
    dtype: torch.dtype
    config: Any = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    kernels: Any = None  # the engine's kernel Dispatcher (genloom.kernels.dispatch)
    #: ``load_model(name, weights=, device=, dtype=, config=, **load_options)`` → another registered model's
    #: ``GenerativeModel``, through the same engine (a family built on another, e.g. an f-distill student)
    load_model: Any = None


class Pipeline:
    """``pipe(labels=..., seed=...)`` → :class:`GenerationResult`. Safe to call repeatedly; holds no run state."""

    def __init__(self, engine: Registries, model: GenerativeModel, defaults: Mapping[str, Any] | None = None,
                 load_options: Mapping[str, Any] | None = None) -> None:
        self.engine = engine
        self.model = model
        self.spec = model.spec
        self.defaults = dict(defaults or {})
        self.load_options = dict(load_options or {})  # the family options it was loaded with (for the manifest)
        self._siblings: dict[str, Any] = {}  # guide networks loaded for policies, by weights path
        self.load_config: Any = None  # the config= the model was loaded with, if any

    def __repr__(self) -> str:
        return f"Pipeline({self.spec.name!r}, paradigm={self.spec.paradigm.value}, device={self.model.device})"

    @property
    def device(self) -> torch.device:
        return self.model.device

    def edit(self, image: Any, mask: Any, label: Any = None, blend: bool = True, **kwargs: Any) -> GenerationResult:
        """Zero-shot editing: keep the source ``image`` where ``mask`` is 1 (True), generate the rest.

        In-painting: mask = 1 outside the hole; out-painting: 1 inside the kept region; class editing: 1 on the
        background and a new ``label``. ``image``: PIL, uint8 (H, W, 3) array, or float (3, H, W) tensor in
        [-1, 1]; ``mask``: (H, W) array, tensor or PIL image at the model's resolution. ``blend`` (default)
        pastes the source's kept pixels back after decoding, as diffusers' in-painting does, softening the seam
        one pixel into the regenerated region; ``blend=False`` returns the decoded tokens only (the model's
        autoencoder then changes the kept pixels too). Other keywords (seed, num_images, guidance, top_k, ...) as
        in ``__call__``.
        """
        from .editing import as_edit_inputs

        if not hasattr(self.model, "prepare_edit"):
            raise InvalidRequest(f"Model {self.spec.name!r} does not support editing (it has no prepare_edit).")
        if not isinstance(blend, bool):
            raise InvalidRequest(f"blend must be True or False, got {blend!r}.")
        source, keep = as_edit_inputs(image, mask, self.spec.image_size)
        return self(label, conditioning={"edit": self.model.prepare_edit(source, keep, blend=blend)}, **kwargs)

    def check(self, batch_invariant: bool = False, **kwargs: Any) -> GenerationRequest:
        """Validate a call's arguments exactly as ``__call__`` would, without generating (bad input is refused
        before a long run starts)."""
        if not isinstance(batch_invariant, bool):
            raise InvalidRequest(f"batch_invariant must be True or False, got {batch_invariant!r}.")
        options = {k: v for k, v in kwargs.items() if k not in CALL_ARGUMENTS}
        named = {k: v for k, v in kwargs.items() if k in inspect.signature(build_request).parameters}
        return build_request(self.spec, self.engine.samplers, self.engine.guidance, options=options,
                             defaults=self.defaults, reserved=CALL_ARGUMENTS, **named)

    def __call__(
        self,
        labels: Any = None,
        num_images: int | None = None,
        seed: int | list[int] | None = None,
        guidance: str | None = None,
        guidance_scale: float | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        batch_size: int | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        output_type: str = "pil",
        rng: str = "image",
        batch_invariant: bool = False,
        latents: Any = None,
        conditioning: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> GenerationResult:
        """Generate images. ``labels`` may be indices or class names (random ones are drawn from each image's
        own stream, as official code draws them); one seed per image (``seed + i``).

        Every image draws its noise from its own generator, so its noise never depends on the batch.
        The network's arithmetic can (BLAS and conv kernels pick other algorithms for other batch sizes,
        ~1e-6 apart); ``batch_invariant=True`` runs the sampler one image at a time so each image is
        bit-identical to generating it alone, at the cost of batching. ``latents``: the starting noise,
        ``(N, *model.latent_shape)``, instead of drawing it; ``output_type="latent"`` returns the final latents
        before decoding. Other keywords are options the guidance policy or the sampler declares
        (``genloom policies`` / ``genloom samplers`` list them, e.g. ``top_k`` for next-scale models).
        ``conditioning`` carries per-request inputs for the sampler (e.g. the edit plan of :meth:`edit`).
        """
        t0 = time.perf_counter()
        _check_callables(progress, cancel)
        request = build_request(
            self.spec, self.engine.samplers, self.engine.guidance,
            labels=labels, num_images=num_images, seed=seed, guidance=guidance, guidance_scale=guidance_scale,
            sampler=sampler, steps=steps, batch_size=batch_size, output_type=output_type, rng=rng,
            options=options, defaults=self.defaults, reserved=CALL_ARGUMENTS,
        )
        if conditioning is not None and not isinstance(conditioning, Mapping):
            raise InvalidRequest(f"conditioning must be a mapping, got {type(conditioning).__name__}.")
        if not isinstance(batch_invariant, bool):
            raise InvalidRequest(f"batch_invariant must be True or False, got {batch_invariant!r}.")
        initial = self._initial_noise(latents, request.num_images)
        if request.output_type == "latent" and self.spec.paradigm is Paradigm.ONE_STEP:
            raise InvalidRequest(f"Model {self.spec.name!r} generates images in one step; it has no latents to "
                                 f"return. Use output_type='pt', 'np' or 'pil'.")
        sampler_obj = self._make(request.sampler.factory, request.sampler.plugin, "sampler",
                                 **request.sampler_options)
        policy = None
        if request.guidance is not None:
            context = {"context": GuidanceContext(self.model, self._sibling, self._classifier)} \
                if request.guidance.context else {}
            policy = self._make(request.guidance.factory, request.guidance.plugin, "guidance policy",
                                scale=request.guidance_scale, **request.guidance_options, **context)

        images, nfe, telemetry, batch_times, drawn = [], [], {}, [], []
        n, bs = request.num_images, (1 if batch_invariant else request.batch_size)
        num_batches = (n + bs - 1) // bs
        for b in range(num_batches):
            lo, hi = b * bs, min(n, (b + 1) * bs)
            ctx = RunContext(batch=b, num_batches=num_batches, images_done=lo, num_images=n,
                             progress=progress, cancel=cancel)
            ctx.check()
            tb = time.perf_counter()
            noise = initial[lo:hi] if initial is not None else None
            out, batch_labels = self._sample_batch(sampler_obj, request, policy, lo, hi, ctx,
                                                   dict(conditioning or {}), noise)
            batch_times.append(time.perf_counter() - tb)
            images.append(out.images.detach().cpu() if request.output_type == "latent"
                          else out.images.detach().float().cpu())
            nfe.extend(int(v) for v in out.nfe.tolist())
            if batch_labels is not None:
                drawn.extend(batch_labels)
            for key, value in out.telemetry.items():
                telemetry.setdefault(key, []).append(value)

        all_images = torch.cat(images)
        t_convert = time.perf_counter()
        converted = all_images if request.output_type == "latent" else convert_images(all_images, request.output_type)
        total = time.perf_counter() - t0
        timings = {
            "total_s": total,
            "sampling_s": sum(batch_times),
            "convert_s": time.perf_counter() - t_convert,
            "per_image_s": total / n,
        }
        return GenerationResult(
            images=converted, seeds=request.seeds, labels=request.labels or drawn or None, nfe=nfe,
            timings=timings, manifest=self._manifest(request, batch_invariant), telemetry=telemetry,
        )

    def _sample_batch(self, sampler_obj: Any, request: GenerationRequest, policy: Any, lo: int, hi: int,
                      ctx: RunContext, conditioning: dict[str, Any],
                      noise: torch.Tensor | None) -> tuple[SampleOutput, list[int] | None]:
        """One batch; random labels are drawn first from the images' own streams (the official order)."""
        rng = ImageRNG(request.seeds[lo:hi], request.rng)
        drawn = None
        if request.labels is not None:
            labels = torch.tensor(request.labels[lo:hi], dtype=torch.long, device=self.model.device)
        elif self.spec.num_classes > 0:
            labels = rng.uniform_labels(self.spec.num_classes).to(self.model.device)
            drawn = labels.tolist()
        else:
            labels = None
        batch = SampleBatch(labels=labels, rng=rng, steps=request.steps, policy=policy, options=conditioning,
                            initial_noise=noise, decode=request.output_type != "latent")
        with torch.inference_mode():
            out = sampler_obj.sample(self.model, batch, ctx)
        if not isinstance(out, SampleOutput) or out.images.shape[0] != hi - lo:
            raise PluginError(
                f"Sampler {request.sampler.name!r} (plugin {request.sampler.plugin!r}) returned "
                f"{type(out).__name__} without {hi - lo} images; it breaks the sampler contract."
            )
        return out, drawn

    def _sibling(self, weights: Any) -> Any:
        """Another checkpoint of this model (a guide network), loaded once per pipeline with the same family
        options, config=, device and dtype."""
        from .weights import resolve

        key = str(resolve(weights).path)
        if key not in self._siblings:
            load = getattr(self.engine, "load", None)
            if load is None:
                raise InvalidRequest("This pipeline's engine cannot load guide networks.")
            self._siblings[key] = load(self.spec.name, weights=weights, config=self.load_config,
                                       device=self.model.device, dtype=self.model.dtype, **self.load_options).model
        return self._siblings[key]

    def _classifier(self, name: str, weights: Any = None) -> Any:
        """A registered classifier on the model's device, built once per pipeline (for guidance policies)."""
        key = f"classifier:{name}:{weights}"
        if key not in self._siblings:
            load = getattr(self.engine, "load_classifier", None)
            if load is None:
                raise InvalidRequest("This pipeline's engine cannot load classifiers.")
            self._siblings[key] = load(name, weights=weights, device=self.model.device)
        return self._siblings[key]

    def _initial_noise(self, latents: Any, n: int) -> torch.Tensor | None:
        """``latents=`` checked against the model's noise shape before any work starts."""
        if latents is None:
            return None
        if self.spec.paradigm is Paradigm.NEXT_SCALE:
            raise InvalidRequest(f"Model {self.spec.name!r} samples tokens scale by scale; it starts from no noise "
                                 f"tensor, so latents= does not apply.")
        shape = tuple(getattr(self.model, "latent_shape", None) or getattr(self.model, "noise_shape", ()))
        if not isinstance(latents, torch.Tensor):
            raise InvalidRequest(f"latents must be a torch tensor of shape (N, {', '.join(map(str, shape))}), got "
                                 f"{type(latents).__name__}.")
        if latents.dim() == len(shape):
            latents = latents.unsqueeze(0)
        if tuple(latents.shape) != (n, *shape) or not latents.is_floating_point():
            raise InvalidRequest(f"latents must be a float tensor of shape ({n}, {', '.join(map(str, shape))}) "
                                 f"for {n} image(s); got {tuple(latents.shape)} {latents.dtype}.")
        if not bool(torch.isfinite(latents).all()):
            raise InvalidRequest("latents contain NaN or infinite values.")
        return latents.detach()

    @staticmethod
    def _make(factory: Any, plugin: str, what: str, **kwargs: Any) -> Any:
        try:
            return factory(**kwargs)
        except GenloomError:
            raise
        except TypeError as exc:
            raise InvalidRequest(f"Bad option for the {what} (plugin {plugin!r}): {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a plugin's factory failing is reported with its name
            raise PluginError(f"The {what} factory of plugin {plugin!r} raised {type(exc).__name__}: {exc}") from exc

    def _manifest(self, request: GenerationRequest, batch_invariant: bool) -> dict[str, Any]:
        from .. import __version__

        return {
            "genloom": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model": self.spec.name,
            "plugin": self.spec.plugin,
            "paradigm": self.spec.paradigm.value,
            "weights": self.model.weights_manifest(),
            "config": _plain(self.model.config),
            "load_options": self.load_options,
            "device": str(self.model.device),
            "dtype": str(self.model.dtype).replace("torch.", ""),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "request": dict(request.as_kwargs(), batch_invariant=batch_invariant),
        }


def _plain(config: Any) -> Any:
    import dataclasses

    if config is None:
        return None
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    return repr(config)
