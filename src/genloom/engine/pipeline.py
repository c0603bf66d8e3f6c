"""A loaded model ready to generate: validates the request, batches, seeds, runs the sampler."""

from __future__ import annotations

import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import torch

from .errors import GenloomError, InvalidRequest, PluginError
from .model import GenerativeModel
from .progress import CancelToken, ProgressCallback, RunContext
from .request import GenerationRequest, build_request
from .result import GenerationResult, convert_images
from .sampling import SampleBatch, SampleOutput
from .seeding import ImageRNG
from .specs import ClassifierSpec, ModelSpec
from .weights import ResolvedWeights

if TYPE_CHECKING:
    from .engine import Engine


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


class Pipeline:
    """``pipe(labels=..., seed=...)`` → :class:`GenerationResult`. Safe to call repeatedly; holds no run state."""

    def __init__(self, engine: Engine, model: GenerativeModel, defaults: Mapping[str, Any] | None = None) -> None:
        self.engine = engine
        self.model = model
        self.spec = model.spec
        self.defaults = dict(defaults or {})

    def __repr__(self) -> str:
        return f"Pipeline({self.spec.name!r}, paradigm={self.spec.paradigm.value}, device={self.model.device})"

    @property
    def device(self) -> torch.device:
        return self.model.device

    def edit(self, image: Any, mask: Any, label: Any = None, **kwargs: Any) -> GenerationResult:
        """Zero-shot editing: keep the source ``image`` where ``mask`` is 1 (True), generate the rest.

        In-painting: mask = 1 outside the hole; out-painting: 1 inside the kept region; class editing: 1 on the
        background and a new ``label``. ``image``: PIL, uint8 (H, W, 3) array, or float (3, H, W) tensor in
        [-1, 1]; ``mask``: (H, W) array, tensor or PIL image at the model's resolution. Other keywords (seed,
        num_images, guidance, top_k, ...) as in ``__call__``.
        """
        from .editing import as_edit_inputs

        if not hasattr(self.model, "prepare_edit"):
            raise InvalidRequest(f"Model {self.spec.name!r} does not support editing (it has no prepare_edit).")
        source, keep = as_edit_inputs(image, mask, self.spec.image_size)
        return self(label, conditioning={"edit": self.model.prepare_edit(source, keep)}, **kwargs)

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
        conditioning: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> GenerationResult:
        """Generate images. ``labels`` may be indices or class names; one seed per image (``seed + i``).

        Every image draws its noise from its own generator, so its noise never depends on the batch.
        The network's arithmetic can (BLAS and conv kernels pick other algorithms for other batch sizes,
        ~1e-6 apart); ``batch_invariant=True`` runs the sampler one image at a time so each image is
        bit-identical to generating it alone, at the cost of batching. Other keywords go to the guidance
        policy (when its spec lists them) or to the sampler (e.g. ``top_k`` for next-scale models).
        ``conditioning`` carries per-request inputs for the sampler (e.g. the edit plan of :meth:`edit`).
        """
        t0 = time.perf_counter()
        request = build_request(
            self.spec, self.engine.samplers, self.engine.guidance,
            labels=labels, num_images=num_images, seed=seed,
            guidance=guidance if guidance is not None else self.defaults.get("guidance"),
            guidance_scale=guidance_scale if guidance_scale is not None else self.defaults.get("guidance_scale"),
            sampler=sampler or self.defaults.get("sampler"),
            steps=steps if steps is not None else self.defaults.get("steps"),
            batch_size=batch_size, output_type=output_type, rng=rng, options=options,
        )
        sampler_obj = self._make(request.sampler.factory, request.sampler.plugin, "sampler",
                                 **request.sampler_options)
        policy = None
        if request.guidance is not None:
            policy = self._make(request.guidance.factory, request.guidance.plugin, "guidance policy",
                                scale=request.guidance_scale, **request.guidance_options)

        images, nfe, telemetry, batch_times = [], [], {}, []
        n, bs = request.num_images, (1 if batch_invariant else request.batch_size)
        num_batches = (n + bs - 1) // bs
        for b in range(num_batches):
            lo, hi = b * bs, min(n, (b + 1) * bs)
            ctx = RunContext(batch=b, num_batches=num_batches, images_done=lo, num_images=n,
                             progress=progress, cancel=cancel)
            ctx.check()
            tb = time.perf_counter()
            out = self._sample_batch(sampler_obj, request, policy, lo, hi, ctx, dict(conditioning or {}))
            batch_times.append(time.perf_counter() - tb)
            images.append(out.images.detach().float().cpu())
            nfe.extend(int(v) for v in out.nfe.tolist())
            for key, value in out.telemetry.items():
                telemetry.setdefault(key, []).append(value)

        all_images = torch.cat(images)
        t_convert = time.perf_counter()
        converted = convert_images(all_images, request.output_type)
        total = time.perf_counter() - t0
        timings = {
            "total_s": total,
            "sampling_s": sum(batch_times),
            "convert_s": time.perf_counter() - t_convert,
            "per_image_s": total / n,
        }
        return GenerationResult(
            images=converted, seeds=request.seeds, labels=request.labels, nfe=nfe,
            timings=timings, manifest=self._manifest(request, batch_invariant), telemetry=telemetry,
        )

    def _sample_batch(self, sampler_obj: Any, request: GenerationRequest, policy: Any,
                      lo: int, hi: int, ctx: RunContext, conditioning: dict[str, Any]) -> SampleOutput:
        labels = None
        if request.labels is not None:
            labels = torch.tensor(request.labels[lo:hi], dtype=torch.long, device=self.model.device)
        batch = SampleBatch(labels=labels, rng=ImageRNG(request.seeds[lo:hi], request.rng),
                            steps=request.steps, policy=policy, options=conditioning)
        with torch.inference_mode():
            out = sampler_obj.sample(self.model, batch, ctx)
        if not isinstance(out, SampleOutput) or out.images.shape[0] != hi - lo:
            raise PluginError(
                f"Sampler {request.sampler.name!r} (plugin {request.sampler.plugin!r}) returned "
                f"{type(out).__name__} without {hi - lo} images; it breaks the sampler contract."
            )
        return out

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
