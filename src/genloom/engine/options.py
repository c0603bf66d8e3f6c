"""Options of policies and samplers, declared once.

A :class:`GuidanceSpec` or :class:`SamplerSpec` lists its options as :class:`Option` s (name, type, default,
bounds or choices, help). Everything else is derived from that one declaration: the API's validation
(:func:`route_options`), the CLI's help and ``-o key=value`` parsing, the UI's form fields and the docs. One
``key=value`` parser (:func:`parse_key_values`) serves the CLI and the UI. Torch-free.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest, suggest

KINDS = {"float": float, "int": int, "str": str, "bool": bool, "dict": dict, "path": str}
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class Option:
    """One option: ``kind`` is ``"float"``, ``"int"``, ``"str"``, ``"bool"``, ``"dict"`` (a mapping, or JSON
    text of one) or ``"path"`` (a file path or weights reference: text or ``os.PathLike``). A ``None`` default
    means "the component decides" (e.g. a schedule that depends on the paradigm)."""

    name: str
    kind: str = "float"
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    above_minimum: bool = False  # the minimum itself is excluded: (minimum, maximum]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Option {self.name!r}: kind must be one of {sorted(KINDS)}, got {self.kind!r}")

    def check(self, value: Any, owner: str) -> Any:
        """The value as this option's type, or an :class:`InvalidRequest` naming the option and its owner.
        Text (from the CLI or the UI) is parsed; ``None`` stands for the default."""
        if value is None:
            return None
        where = f"option {self.name!r} of {owner}"
        value = self._parse(value, where)
        if self.choices and value not in self.choices:
            raise InvalidRequest(f"The {where} must be one of {list(self.choices)}, got {value!r}.")
        if self.kind in ("int", "float"):
            if self.kind == "float" and not math.isfinite(value) and not (value == math.inf and self.maximum is None):
                raise InvalidRequest(f"The {where} must be a finite number, got {value!r}.")
            low = self.minimum is not None and (value <= self.minimum if self.above_minimum else value < self.minimum)
            if low or self.maximum is not None and value > self.maximum:
                raise InvalidRequest(f"The {where} must lie in {self.range_text()}, got {value!r}.")
        return value

    def _parse(self, value: Any, where: str) -> Any:
        import numbers

        text = value.strip() if isinstance(value, str) else None
        if self.kind == "path":
            if isinstance(value, (str, os.PathLike)) and str(value).strip():
                return str(value)
        elif self.kind == "dict":
            if isinstance(value, Mapping):
                return dict(value)
            if text is not None:
                try:
                    parsed = json.loads(text)
                except json.JSONDecodeError:
                    parsed = None
                if isinstance(parsed, dict):
                    return parsed
        elif self.kind == "bool":
            if isinstance(value, bool):
                return value
            if text is not None and text.lower() in _TRUE + _FALSE:
                return text.lower() in _TRUE
        elif self.kind == "str":
            if isinstance(value, str):
                return value
        elif self.kind == "int":
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                return int(value)
            if text is not None and text.lstrip("+-").isascii() and text.lstrip("+-").isdigit():
                return int(text)
        else:
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                return float(value)
            if text is not None and text.isascii():
                try:
                    return float(text)
                except ValueError:
                    pass
        raise InvalidRequest(f"The {where} must be {_article(self.kind)}, got {value!r}.")

    def describe(self) -> str:
        """One line of help: ``name (float ≥ 0, default 1): what it does``."""
        bits = [self.kind]
        if self.choices:
            bits = [" | ".join(map(str, self.choices))]
        elif self.minimum is not None or self.maximum is not None:
            bits.append(f"in {self.range_text()}")
        if self.default is not None:
            bits.append(f"default {self.default}")
        return f"{self.name} ({', '.join(bits)}): {self.help}"

    def range_text(self) -> str:
        lo = "(-inf" if self.minimum is None else f"{'(' if self.above_minimum else '['}{self.minimum:g}"
        hi = "inf)" if self.maximum is None else f"{self.maximum:g}]"
        return f"{lo}, {hi}"

    def form_field(self) -> dict[str, Any]:
        """What a form needs to draw this option (the UI builds one input per field)."""
        return {"name": self.name, "kind": self.kind, "default": self.default, "choices": list(self.choices),
                "minimum": self.minimum, "maximum": self.maximum, "info": self.help}


def _article(kind: str) -> str:
    return {"float": "a number", "int": "a whole number", "str": "text", "bool": "true or false",
            "dict": "a mapping (JSON object)", "path": "a file path"}[kind]


def parse_key_values(pairs: Iterable[str], where: str = "option") -> dict[str, Any]:
    """``key=value`` items (CLI ``-o`` flags or UI lines; blank lines and ``#`` comments skipped) → a dict;
    values that parse as JSON become numbers/booleans/lists, others stay text (declared options parse them)."""
    out: dict[str, Any] = {}
    for item in pairs:
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise InvalidRequest(f"The {where} {item!r} is not key=value.")
        if key in out:
            raise InvalidRequest(f"The {where} {key!r} is given twice.")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def check_options(values: Mapping[str, Any], declared: Sequence[Option], owner: str) -> dict[str, Any]:
    """Every value checked against its declaration; ``None`` values dropped (the component's default)."""
    by_name = {o.name: o for o in declared}
    out = {}
    for key, value in values.items():
        checked = by_name[key].check(value, owner)
        if checked is not None:
            out[key] = checked
    return out


def route_options(options: Mapping[str, Any], policy: Any, sampler: Any,
                  reserved: Iterable[str] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split extra keyword options between the guidance policy and the sampler by their declarations, checking
    each; a sampler with ``open_options`` (diffusers scheduler overrides) takes what nobody declared and its
    factory checks it. Anything else is an :class:`InvalidRequest` that lists what is accepted."""
    reserved = set(reserved)
    policy_opts = {o.name for o in getattr(policy, "options", ())}
    sampler_opts = {o.name for o in getattr(sampler, "options", ())}
    to_policy, to_sampler = {}, {}
    for key, value in options.items():
        if key in reserved:
            raise InvalidRequest(f"{key!r} is a request argument of its own, not a policy or sampler option; "
                                 f"set it directly.")
        if key in policy_opts:
            to_policy[key] = value
        elif key in sampler_opts or getattr(sampler, "open_options", False):
            to_sampler[key] = value
        else:
            known = sorted(policy_opts | sampler_opts)
            owners = " and ".join(f"{w} {s.name!r}" for w, s in (("policy", policy), ("sampler", sampler)) if s)
            raise InvalidRequest(f"Unknown option {key!r} for {owners}.{suggest(key, known)} Accepted: "
                                 f"{', '.join(known) or 'none'}.")
    policy_checked = check_options(to_policy, policy.options, f"policy {policy.name!r}") if policy else {}
    sampler_checked = check_options({k: v for k, v in to_sampler.items() if k in sampler_opts},
                                    sampler.options, f"sampler {sampler.name!r}") if sampler else {}
    sampler_checked.update({k: v for k, v in to_sampler.items() if k not in sampler_opts})
    return policy_checked, sampler_checked


def options_help(declared: Sequence[Option], indent: str = "  ") -> str:
    """The help lines of a component's options (CLI listings and docs)."""
    return "\n".join(indent + o.describe() for o in declared) if declared else f"{indent}(no options)"


def dataclass_from_mapping(cls: type, data: Mapping[str, Any], what: str) -> Any:
    """A (possibly nested) config dataclass from a JSON-like mapping (``--config FILE``, ``config={...}``):
    nested dataclasses and tuples of them are built from their own mappings; unknown keys are refused."""
    import dataclasses
    import typing

    if not isinstance(data, Mapping):
        raise InvalidRequest(f"{what} must be a mapping of {cls.__name__} fields, got {type(data).__name__}.")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InvalidRequest(f"Unknown {cls.__name__} field(s) {unknown} in {what}; fields: {sorted(names)}.")
    values = {}
    for key, value in data.items():
        hint = hints[key]
        inner = typing.get_args(hint)[0] if typing.get_origin(hint) is tuple and typing.get_args(hint) else None
        if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            value = dataclass_from_mapping(hint, value, f"{what}.{key}")
        elif inner is not None and dataclasses.is_dataclass(inner):
            value = tuple(dataclass_from_mapping(inner, v, f"{what}.{key}") if isinstance(v, Mapping) else v
                          for v in value)
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        values[key] = value
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"{what} does not make a valid {cls.__name__}: {exc}") from None
