"""Plugin discovery and loading, one plugin at a time.

Built-in plugins and third-party ones (the ``genloom`` entry-point group) go through the same path:
import → API-version check → pluggy registration → each hook called with a staging ``register`` → the
staged contributions are committed to the registries together. A plugin that fails at any point is
rolled back whole, recorded with its error and reported; the others keep working.

Environment:
  ``GENLOOM_PLUGINS``        comma-separated flags: ``strict`` (a failure raises), ``off`` (no third-party plugins)
  ``GENLOOM_PLUGINS_ALLOW``  comma-separated entry-point names; third-party plugins not listed are skipped
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import os
import traceback
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .registry import Registry
from .specs import SPEC_TYPES, CommandSpec, Paradigm

ENTRY_POINT_GROUP = "genloom"
BUILTIN_PLUGINS = (
    "genloom.plugins.autoencoder",
    "genloom.plugins.builtin_samplers",
    "genloom.plugins.classifiers",
    "genloom.plugins.dimr",
    "genloom.plugins.fdistill",
    "genloom.plugins.guidance",
    "genloom.plugins.kernels",
    "genloom.plugins.lamamba",
    "genloom.plugins.smoke",
    "genloom.plugins.var",
)


class PluginWarning(UserWarning):
    """A plugin failed to load; genloom goes on without it."""


@dataclass
class PluginRecord:
    """What `genloom plugins` shows for one plugin."""

    name: str
    source: str  # "builtin" | "entry-point" | "object"
    module: str
    version: str | None = None
    status: str = "pending"  # "loaded" | "failed" | "refused" | "skipped"
    error: str | None = None
    api: str | None = None
    hooks: list[str] = field(default_factory=list)
    contributions: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "loaded"


@dataclass(frozen=True)
class PluginSettings:
    """How third-party plugins are treated; defaults come from the environment."""

    third_party: bool = True
    strict: bool = False
    allow: frozenset[str] | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> PluginSettings:
        env = os.environ if environ is None else environ
        flags = {f.strip().lower() for f in env.get("GENLOOM_PLUGINS", "").split(",") if f.strip()}
        unknown = flags - {"strict", "off", "on"}
        if unknown:
            raise PluginError(
                f"GENLOOM_PLUGINS has unknown flag(s) {sorted(unknown)}; use a comma-separated list of "
                f"'strict' and 'off'."
            )
        allow_raw = env.get("GENLOOM_PLUGINS_ALLOW")
        allow = None
        if allow_raw is not None:
            allow = frozenset(a.strip() for a in allow_raw.split(",") if a.strip())
        return cls(third_party="off" not in flags, strict="strict" in flags, allow=allow)


class PluginHost:
    """Owns the pluggy manager, the registries and the per-plugin report."""

    def __init__(self, settings: PluginSettings | None = None) -> None:
        self.settings = settings or PluginSettings.from_env()
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.registries: dict[str, Registry[Any]] = {
            kind: Registry(kind, "guidance policy" if kind == "guidance" else None) for kind in SPEC_TYPES
        }
        self.records: list[PluginRecord] = []

    # ----------------------------------------------------------------- discovery
    def load_all(self, extra: Iterable[tuple[str, object]] = ()) -> None:
        """Load the built-ins, then third-party entry points, then explicitly given plugin objects."""
        for module in BUILTIN_PLUGINS:
            name = module.rsplit(".", 1)[-1]
            self.load_plugin(name, lambda m=module: importlib.import_module(m), source="builtin", module=module)
        if self.settings.third_party:
            for ep in _entry_points():
                record_name = ep.name
                if self.settings.allow is not None and record_name not in self.settings.allow:
                    self.records.append(
                        PluginRecord(
                            name=record_name,
                            source="entry-point",
                            module=ep.value,
                            version=_dist_version(ep),
                            status="skipped",
                            error="not listed in GENLOOM_PLUGINS_ALLOW",
                        )
                    )
                    continue
                self.load_plugin(record_name, ep.load, source="entry-point", module=ep.value, version=_dist_version(ep))
        for name, obj in extra:
            self.load_plugin(name, lambda o=obj: o, source="object", module=getattr(obj, "__name__", repr(obj)))

    def load_plugin(
        self,
        name: str,
        loader: Callable[[], object],
        *,
        source: str,
        module: str,
        version: str | None = None,
    ) -> PluginRecord:
        """Load one plugin in isolation; on failure roll it back and record why."""
        record = PluginRecord(name=name, source=source, module=module, version=version)
        self.records.append(record)
        if any(r.name == name and r.ok for r in self.records if r is not record):
            return self._fail(record, "refused", f"a plugin named {name!r} is already loaded; rename the entry point.")
        try:
            plugin = loader()
        except Exception as exc:  # noqa: BLE001 - any import failure is the plugin's, not ours
            return self._fail(record, "failed", f"import failed: {_describe(exc)}")

        api = getattr(plugin, "GENLOOM_PLUGIN_API", None)
        record.api = None if api is None else str(api)
        if record.version is None:
            record.version = getattr(plugin, "__version__", None)
        if api is not None:
            try:
                major = int(str(api).split(".")[0])
            except ValueError:
                return self._fail(record, "refused", f"GENLOOM_PLUGIN_API={api!r} is not a version like '1.0'.")
            if major != hookspecs.PLUGIN_API_MAJOR:
                return self._fail(
                    record,
                    "refused",
                    f"written for genloom plugin API {api}, but this genloom speaks API "
                    f"{hookspecs.PLUGIN_API_VERSION} (major {hookspecs.PLUGIN_API_MAJOR}); install a version of the "
                    f"plugin built for API {hookspecs.PLUGIN_API_MAJOR}.x or a genloom that speaks {major}.x.",
                )

        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - pluggy validation errors, duplicate objects
            return self._fail(record, "failed", f"registration refused by pluggy: {_describe(exc)}")

        unknown_hooks = [
            h for h in _hookimpl_names(self.pm, plugin) if h not in hookspecs.HOOK_KINDS
        ]
        if unknown_hooks:
            self.pm.unregister(plugin)
            return self._fail(
                record,
                "failed",
                f"implements unknown hook(s) {unknown_hooks}; genloom API {hookspecs.PLUGIN_API_VERSION} has "
                f"{sorted(hookspecs.HOOK_KINDS)}.",
            )

        staged: list[tuple[str, Any]] = []
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        for hook_name, kind in hookspecs.HOOK_KINDS.items():
            caller = self.pm.subset_hook_caller(hook_name, remove_plugins=others)
            if not caller.get_hookimpls():
                continue
            record.hooks.append(hook_name)
            try:
                caller(register=_Stager(kind, name, staged))
            except Exception as exc:  # noqa: BLE001 - a plugin's hook raising must not take us down
                self.pm.unregister(plugin)
                return self._fail(record, "failed", f"hook {hook_name} raised: {_describe(exc)}")

        committed: list[tuple[str, str]] = []
        try:
            for kind, spec in staged:
                self.registries[kind]._add(spec.name, spec)
                committed.append((kind, spec.name))
        except PluginError as exc:
            for kind, spec_name in committed:
                self.registries[kind]._remove(spec_name)
            self.pm.unregister(plugin)
            return self._fail(record, "failed", str(exc))

        for kind, spec_name in committed:
            record.contributions.setdefault(kind, []).append(spec_name)
        record.status = "loaded"
        return record

    def _fail(self, record: PluginRecord, status: str, message: str) -> PluginRecord:
        record.status = status
        record.error = message
        text = f"genloom plugin {record.name!r} ({record.module}) {status}: {message}"
        if self.settings.strict:
            raise PluginError(text + " (raised because GENLOOM_PLUGINS=strict)")
        warnings.warn(
            text + " Other plugins keep working; set GENLOOM_PLUGINS=strict to make this an error.",
            PluginWarning,
            stacklevel=3,
        )
        return record


class _Stager:
    """The ``register`` callback handed to a hook: validates and stages, commits nothing yet."""

    def __init__(self, kind: str, plugin: str, staged: list[tuple[str, Any]]) -> None:
        self.kind = kind
        self.plugin = plugin
        self.staged = staged
        self.spec_type = SPEC_TYPES[kind]

    def __call__(self, spec: Any = None, /, **fields: Any) -> Any:
        if spec is None:
            spec = self._from_fields(fields)
        elif fields:
            raise PluginError(f"register() takes a {self.spec_type.__name__} or keyword fields, not both.")
        elif self.kind == "commands" and not isinstance(spec, CommandSpec):
            spec = CommandSpec(name=getattr(spec, "name", None) or "", command=spec,
                               description=getattr(spec, "help", "") or "")
        if not isinstance(spec, self.spec_type):
            raise PluginError(
                f"register() for {self.kind} expects a {self.spec_type.__name__}, got {type(spec).__name__}."
            )
        if hasattr(spec, "paradigm") and not isinstance(spec.paradigm, Paradigm):
            try:
                spec = dataclasses.replace(spec, paradigm=Paradigm(spec.paradigm))
            except ValueError:
                raise PluginError(
                    f"{spec.name!r}: unknown paradigm {spec.paradigm!r}; use one of {[p.value for p in Paradigm]}."
                ) from None
        spec = dataclasses.replace(spec, plugin=self.plugin)
        self.staged.append((self.kind, spec))
        return spec

    def _from_fields(self, fields: dict[str, Any]) -> Any:
        try:
            return self.spec_type(**fields)
        except TypeError as exc:
            raise PluginError(f"register() for {self.kind}: {exc}") from None


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    seen: set[str] = set()
    unique = []
    for ep in sorted(eps, key=lambda e: e.name):
        if ep.name in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add(ep.name)
        unique.append(ep)
    return unique


def _dist_version(ep: importlib.metadata.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "version", None)


def _hookimpl_names(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    names = []
    for attr in dir(plugin):
        if pm.parse_hookimpl_opts(plugin, attr) is not None:
            names.append(attr)
    return names


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"
