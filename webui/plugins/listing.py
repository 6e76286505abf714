"""An extension that is not imported, as its files describe it: its problems and its settings."""

from __future__ import annotations

import contextlib
from types import MappingProxyType
from typing import Any

from webui.errors import UserFacingError
from webui.plugins import upstream
from webui.plugins.loader import ExtensionSource, requirements_problems
from webui.plugins.params import ParamError, ParamSpec, infer_specs
from webui.plugins.static_info import StaticInfo, missing_imports
from webui.plugins.store import SettingsStore

# Extensions this app used to ship whose samplers are now GenerationParams fields: a settings file or
# ``--extensions`` that still names one is told where the sampler went (name -> Parameters-tab group).
BUILT_IN_NOW = MappingProxyType({"dry": "DRY", "xtc": "XTC", "mirostat": "Mirostat"})


def built_in_now(name: str) -> str | None:
    """Why ``name`` is no extension any more (it became a built-in sampler), or None."""
    group = BUILT_IN_NOW.get(name)
    return None if group is None else f"{name} is built in now: set {group} on the Parameters tab or in the request"


def file_problem(name: str, source: ExtensionSource, static: StaticInfo | None) -> str | None:
    """What an extension's files show is wrong, found without importing it (or None)."""
    if static is not None and static.error:
        return f"extension {name!r} cannot be loaded: {static.error}"
    try:
        missing = requirements_problems(source)
    except (OSError, UnicodeDecodeError) as exc:
        return f"extension {name!r}: cannot read {source.requirements_file}: {exc}"
    if missing:
        return (f"extension {name!r} needs packages that are not installed or too old: {', '.join(missing)}. "
                f"Install them with: pip install -r {source.requirements_file}")
    if static is not None and static.params is not None:
        try:
            infer_specs(dict(static.params), static.params_meta)
        except Exception as exc:  # noqa: BLE001 - what importing it would report too
            return (f"extension {name!r} declares invalid settings (params / params_meta): "
                    f"{type(exc).__name__}: {exc}")
    absent = missing_imports(static, source.script.parent) if static is not None and source.script else []
    if absent:
        return (f"extension {name!r} imports {', '.join(absent)}, which is not installed "
                f"(pip install the package that provides it)")
    lacking = upstream.unprovided_modules(static.upstream_modules) if static is not None else []
    if lacking:
        return (f"extension {name!r} imports text-generation-webui's {', '.join(lacking)}, which this app "
                f"does not provide (see {upstream.DOCS})")
    return None


def static_specs(static: StaticInfo | None) -> dict[str, ParamSpec]:
    """The settings a literal ``params`` dict (and ``params_meta``) declare."""
    static = static or StaticInfo()
    meta = static.params_meta if isinstance(static.params_meta, dict) else None
    try:
        return infer_specs(dict(static.params or {}), meta)
    except Exception:  # noqa: BLE001 - settings that only importing the extension can judge
        return {}


def saved_values(store: SettingsStore, name: str, specs: dict[str, ParamSpec]) -> dict[str, Any]:
    """The saved settings of an extension that is not imported (those its specs accept)."""
    try:
        saved = store.load(name)
    except UserFacingError:
        return {}
    values = {}
    for key, value in saved.items():
        if key in specs:
            with contextlib.suppress(ParamError):
                values[key] = specs[key].coerce(value)
    return values


def static_values(static: StaticInfo | None, specs: dict[str, ParamSpec], saved: dict[str, Any]) -> dict[str, Any]:
    """The ``params`` an extension would have once imported: its literal dict with saved values."""
    return {**dict((static or StaticInfo()).params or {}), **{k: s.default for k, s in specs.items()}, **saved}
