"""Typed extension settings, inferred from the default values of an extension's ``params`` dict.

An extension may refine a setting with a module-level ``params_meta`` dict, e.g.
``params_meta = {"mode": {"choices": ["a", "b"]}, "strength": {"min": 0, "max": 2, "step": 0.1,
"label": "Strength", "info": "..."}}``. Without it, the type alone decides.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from webui.errors import UserFacingError
from webui.plugins.hookspecs import PARAMS_META_KEYS

ParamType = Literal["bool", "int", "float", "str", "list", "other"]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class ParamError(UserFacingError, ValueError):
    """A setting value that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class ParamSpec:
    """One editable setting of an extension."""

    key: str
    type: ParamType
    default: Any
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    label: str | None = None
    info: str | None = None

    @property
    def editable(self) -> bool:
        return self.type != "other"

    def coerce(self, value: Any) -> Any:
        """Return ``value`` converted to this setting's type, or raise ParamError."""
        if self.type == "other":
            raise ParamError(f"setting {self.key!r} has a {type(self.default).__name__} default "
                             "and cannot be edited")
        converted = _CONVERTERS[self.type](self, value)
        if self.type in ("int", "float"):
            if self.minimum is not None and converted < self.minimum:
                raise ParamError(f"{self.key!r} must be >= {self.minimum}, got {converted}")
            if self.maximum is not None and converted > self.maximum:
                raise ParamError(f"{self.key!r} must be <= {self.maximum}, got {converted}")
        if self.choices is not None:
            items = converted if self.type == "list" else [converted]
            bad = [item for item in items if item not in self.choices]
            if bad:
                raise ParamError(f"{self.key!r}: {bad[0]!r} is not one of "
                                 f"{', '.join(map(repr, self.choices))}")
        return converted


def _bool(spec: ParamSpec, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ParamError(f"{spec.key!r} expects true or false, got {value!r}")


def _int(spec: ParamSpec, value: Any) -> int:
    if isinstance(value, bool):
        raise ParamError(f"{spec.key!r} expects an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = math.nan
        if number.is_integer():
            return int(number)
    raise ParamError(f"{spec.key!r} expects an integer, got {value!r}")


def _float(spec: ParamSpec, value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ParamError(f"{spec.key!r} expects a number, got {value!r}") from None
    else:
        raise ParamError(f"{spec.key!r} expects a number, got {value!r}")
    if not math.isfinite(number):
        raise ParamError(f"{spec.key!r} expects a finite number, got {value!r}")
    return number


def _str(spec: ParamSpec, value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ParamError(f"{spec.key!r} expects text, got {value!r}")


def _list(spec: ParamSpec, value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ParamError(f"{spec.key!r} expects a list (JSON), got {value!r}") from None
    if not isinstance(value, (list, tuple)):
        raise ParamError(f"{spec.key!r} expects a list, got {value!r}")
    defaults = spec.default or []
    if defaults and all(isinstance(d, str) for d in defaults):
        bad = [v for v in value if not isinstance(v, str)]
        if bad:
            raise ParamError(f"{spec.key!r} expects a list of strings, got {bad[0]!r} in it")
    return list(value)


_CONVERTERS = {"bool": _bool, "int": _int, "float": _float, "str": _str, "list": _list}


def _type_of(default: Any) -> ParamType:
    for python_type, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"),
                              ((list, tuple), "list")):
        if isinstance(default, python_type):
            return name  # type: ignore[return-value]
    return "other"


def infer_specs(params: Mapping[str, Any],
                meta: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, ParamSpec]:
    """ParamSpecs for every setting in ``params`` (metadata keys such as is_tab excluded)."""
    meta = meta or {}
    specs: dict[str, ParamSpec] = {}
    for key, default in params.items():
        if key in PARAMS_META_KEYS:
            continue
        extra = meta.get(key, {})
        choices = extra.get("choices")
        specs[key] = ParamSpec(
            key=key, type=_type_of(default),
            default=list(default) if isinstance(default, tuple) else default,
            choices=tuple(choices) if choices is not None else None,
            minimum=extra.get("min"), maximum=extra.get("max"), step=extra.get("step"),
            label=extra.get("label"), info=extra.get("info"))
    return specs
