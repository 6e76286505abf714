"""One imported extension: its hooks, settings and load-time warnings."""

from __future__ import annotations

import inspect
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from webui.plugins.calling import CallPlan, CallPlanError, plan_call
from webui.plugins.hookspecs import CALLABLE_HOOKS, HOOKS, looks_like_hook
from webui.plugins.loader import ExtensionSource
from webui.plugins.params import ParamSpec, infer_specs
from webui.plugins.samplers import SamplerSpec


@dataclass
class LoadedExtension:
    """An imported extension. ``params`` is the extension's own dict, edited in place so the
    extension sees new values the way text-generation-webui extensions expect."""

    name: str
    source: ExtensionSource
    obj: Any
    hooks: dict[str, Callable[..., Any]]
    params: MutableMapping[str, Any]
    param_specs: dict[str, ParamSpec]
    warnings: list[str]
    setup_done: bool = False
    upstream: bool = False  # written for text-generation-webui: hooks get its history shape
    samplers: tuple[SamplerSpec, ...] | None = None
    _plans: dict[tuple[str, tuple[str, ...]], CallPlan] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        return str(self.params.get("display_name") or self.name)

    @property
    def is_tab(self) -> bool:
        return bool(self.params.get("is_tab", False))

    def plan(self, hook: str, extras: Sequence[str] = ()) -> CallPlan:
        """How to call this extension's ``hook`` (cached per set of extra arguments)."""
        key = (hook, tuple(extras))
        plan = self._plans.get(key)
        if plan is None:
            spec = HOOKS[hook]
            plan = plan_call(self.hooks[hook], spec.args, extras, spec.positional_args)
            self._plans[key] = plan
        return plan


def inspect_extension(name: str, source: ExtensionSource, obj: Any) -> LoadedExtension:
    """Collect hooks and settings, and the warnings worth showing when it loads."""
    warnings: list[str] = []
    hooks: dict[str, Callable[..., Any]] = {}
    for hook in CALLABLE_HOOKS:
        attr = getattr(obj, hook, None)
        if attr is None:
            continue
        if not callable(attr):
            warnings.append(f"{hook} is not a function and is ignored")
            continue
        hooks[hook] = attr
        try:
            plan_call(attr, HOOKS[hook].args, by_position=HOOKS[hook].positional_args)
        except CallPlanError as exc:
            warnings.append(f"{hook}: {exc}; calls will fail")

    for attr_name, value in _public_functions(obj):
        reason = looks_like_hook(attr_name)
        if reason:
            warnings.append(f"{attr_name}() is not a known hook and will never be called: {reason}")

    raw = getattr(obj, "params", None)
    if raw is None:
        params: MutableMapping[str, Any] = {}
    elif isinstance(raw, MutableMapping):
        params = raw
    else:
        warnings.append(f"params should be a dict, not {type(raw).__name__}; ignored")
        params = {}
    meta = getattr(obj, "params_meta", None)
    if meta is not None and not isinstance(meta, dict):
        warnings.append("params_meta should be a dict; ignored")
        meta = None
    specs = infer_specs(params, meta)
    unknown_meta = sorted(set(meta or {}) - set(specs))
    if unknown_meta:
        warnings.append(f"params_meta names settings that params lacks: {', '.join(unknown_meta)}")
    return LoadedExtension(name, source, obj, hooks, params, specs, warnings)


def _public_functions(obj: Any) -> list[tuple[str, Any]]:
    """Public functions defined by the extension itself (not ones it imported)."""
    found = []
    if isinstance(obj, ModuleType):
        for attr_name, value in vars(obj).items():
            if inspect.isfunction(value) and value.__module__ == obj.__name__:
                found.append((attr_name, value))
    else:
        for attr_name in dir(obj):
            if not attr_name.startswith("_") and callable(getattr(obj, attr_name, None)):
                found.append((attr_name, getattr(obj, attr_name)))
    return found
