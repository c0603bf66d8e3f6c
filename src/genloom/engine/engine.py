"""The Engine: plugin host + registries + ``load``; the one piece of global state is the default engine."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import GenloomError, InvalidRequest, PluginError, WeightsError
from .plugins import PluginHost, PluginRecord, PluginSettings
from .registry import Registry
from .specs import ClassifierSpec, CommandSpec, GuidanceSpec, KernelSpec, ModelSpec, SamplerSpec

if TYPE_CHECKING:
    from .pipeline import Pipeline
    from .result import GenerationResult


class Engine:
    """Discovers plugins and exposes what they registered.

    ``Engine()`` follows the environment (``GENLOOM_PLUGINS``, ``GENLOOM_PLUGINS_ALLOW``);
    ``Engine(third_party=False)`` loads the built-ins only; ``plugins=[("name", module)]`` adds plugin
    objects directly (handy in tests and notebooks).
    """

    def __init__(
        self,
        *,
        third_party: bool | None = None,
        strict: bool | None = None,
        allow: Iterable[str] | None = None,
        plugins: Iterable[tuple[str, object]] = (),
    ) -> None:
        env = PluginSettings.from_env()
        settings = PluginSettings(
            third_party=env.third_party if third_party is None else third_party,
            strict=env.strict if strict is None else strict,
            allow=env.allow if allow is None else frozenset(allow),
        )
        self._host = PluginHost(settings)
        self._host.load_all(extra=plugins)

    # registries ------------------------------------------------------------
    @property
    def models(self) -> Registry[ModelSpec]:
        return self._host.registries["models"]

    @property
    def guidance(self) -> Registry[GuidanceSpec]:
        return self._host.registries["guidance"]

    @property
    def samplers(self) -> Registry[SamplerSpec]:
        return self._host.registries["samplers"]

    @property
    def classifiers(self) -> Registry[ClassifierSpec]:
        return self._host.registries["classifiers"]

    @property
    def kernels(self) -> Registry[KernelSpec]:
        return self._host.registries["kernels"]

    @property
    def dispatcher(self) -> Any:
        """The kernel dispatcher over every registered kernel (built-in and plugins'), handed to factories."""
        from ..kernels.dispatch import Dispatcher

        return Dispatcher(self.kernels)

    @property
    def commands(self) -> Registry[CommandSpec]:
        return self._host.registries["commands"]

    @property
    def plugin_report(self) -> list[PluginRecord]:
        """One record per plugin seen: loaded, failed, refused or skipped, with the error."""
        return list(self._host.records)

    @property
    def plugin_manager(self) -> Any:
        """The underlying ``pluggy.PluginManager`` (for advanced use)."""
        return self._host.pm

    # loading ---------------------------------------------------------------
    def load(
        self,
        name: str,
        weights: str | os.PathLike[str] | None = None,
        device: Any = None,
        dtype: Any = None,
        config: Any = None,
        *,
        sampler: str | None = None,
        steps: int | None = None,
        guidance: str | None = None,
        guidance_scale: float | None = None,
        **extra: Any,
    ) -> Pipeline:
        """Build model ``name`` with its weights on a device; the keyword defaults apply to every call."""
        from .pipeline import Pipeline

        model = self.build_model(name, weights, device, dtype, config, **extra)
        defaults = {"sampler": sampler, "steps": steps, "guidance": guidance, "guidance_scale": guidance_scale}
        loaded_with = {k: str(v) if isinstance(v, os.PathLike) else v for k, v in extra.items()}
        pipe = Pipeline(self, model, {k: v for k, v in defaults.items() if v is not None}, load_options=loaded_with)
        pipe.load_config = config  # guide networks of the same architecture are loaded with it too
        return pipe

    def build_model(self, name: str, weights: str | os.PathLike[str] | None = None, device: Any = None,
                    dtype: Any = None, config: Any = None, **extra: Any) -> Any:
        """The :class:`GenerativeModel` of ``load`` without a pipeline (its load options checked first); what a
        family factory reaches other registered models through (``LoadOptions.load_model``)."""
        from .model import GenerativeModel

        spec = self.models[name]
        extra = self._check_load_options(spec, extra)
        options = self._load_options(spec, weights, device, dtype, config, extra, self.dispatcher)
        options = replace(options, load_model=self.build_model)
        model = self._build(spec, options, "model", GenerativeModel)
        if options.weights is not None and not model.weights:
            model.weights.append(options.weights)
        model.to(device=options.device, dtype=options.dtype)
        return model

    def load_classifier(self, name: str, weights: str | os.PathLike[str] | None = None, device: Any = None,
                        dtype: Any = None, **extra: Any) -> Any:
        """Build classifier ``name`` (see ``engine.classifiers``) with its weights, ready for inference."""
        from .classifier import ImageClassifier

        spec = self.classifiers[name]
        options = self._load_options(spec, weights, device, dtype, None, extra, self.dispatcher)
        return self._build(spec, options, "classifier", ImageClassifier)

    @staticmethod
    def _check_load_options(spec: ModelSpec, extra: Mapping[str, Any]) -> dict[str, Any]:
        """The family's declared load options, typed; anything else is refused with the accepted list."""
        from .options import check_options

        declared = {o.name for o in spec.load_options}
        unknown = sorted(set(extra) - declared)
        if unknown:
            accepted = ", ".join(f"{o.name}=" for o in spec.load_options) or "none besides weights=, config=, " \
                                                                               "device=, dtype="
            raise InvalidRequest(f"Unknown load option(s) {unknown} for model {spec.name!r}; it accepts {accepted} "
                                 f"(CLI: --load-option KEY=VALUE; see `genloom models --options`).")
        return check_options(extra, spec.load_options, f"model {spec.name!r}")

    @staticmethod
    def _load_options(spec: Any, weights: Any, device: Any, dtype: Any, config: Any,
                      extra: Mapping[str, Any], kernels: Any) -> Any:
        """Device, dtype and the resolved weights (the user's, else the spec's default) for a factory."""
        from . import weights as weights_mod
        from .devices import resolve_device, resolve_dtype
        from .pipeline import LoadOptions

        dev = resolve_device(device)
        ref = weights if weights is not None else spec.default_weights
        resolved = weights_mod.resolve(ref) if ref is not None else None
        return LoadOptions(name=spec.name, spec=spec, weights=resolved, device=dev, dtype=resolve_dtype(dtype, dev),
                           config=config, extra=dict(extra), kernels=kernels)

    @staticmethod
    def _build(spec: Any, options: Any, what: str, expected: type) -> Any:
        """Call a plugin's factory; its failures and wrong return types name the plugin."""
        try:
            built = spec.factory(options)
        except GenloomError:
            raise
        except Exception as exc:  # noqa: BLE001 - name the plugin whose factory broke
            raise PluginError(
                f"Building {what} {spec.name!r} (plugin {spec.plugin!r}) failed: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(built, expected):
            raise PluginError(
                f"The factory of {what} {spec.name!r} (plugin {spec.plugin!r}) returned {type(built).__name__}, "
                f"not a genloom {expected.__name__}."
            )
        return built

    def reproduce(self, manifest: Mapping[str, Any] | str | os.PathLike[str], **overrides: Any) -> GenerationResult:
        """Re-run a generation from its manifest (a dict or a ``manifest.json`` path).

        The weights must have the same sha256 as recorded; ``overrides`` (e.g. ``device=``, ``weights=``) go to
        :meth:`load`.
        """
        if not isinstance(manifest, Mapping):
            manifest = json.loads(Path(manifest).read_text())
        recorded = manifest.get("weights") or []
        load_kwargs: dict[str, Any] = {"dtype": manifest.get("dtype"), **manifest.get("load_options", {})}
        if recorded and "weights" not in overrides:
            load_kwargs["weights"] = recorded[0]["source"]
        load_kwargs.update(overrides)
        pipe = self.load(manifest["model"], **load_kwargs)
        got = pipe.model.weights_manifest()
        for want, have in zip(recorded, got):
            if want.get("sha256") != have.get("sha256"):
                raise WeightsError(
                    f"Weights {have['source']!r} have sha256 {have['sha256'][:12]}…, but the manifest recorded "
                    f"{want['sha256'][:12]}…; pass the original file with weights=."
                )
        return pipe(**manifest["request"])


_DEFAULT: Engine | None = None


def default_engine() -> Engine:
    """The process-wide engine used by :func:`genloom.load` (built on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Engine()
    return _DEFAULT


def reset_default_engine() -> None:
    """Forget the default engine, e.g. after installing a plugin in the same process."""
    global _DEFAULT
    _DEFAULT = None
