"""ExtensionManager: discovery, enable/disable in order, isolated hook dispatch, settings, samplers.

Everything lives on the instance (built once in the AppContext). Hooks are dispatched by name:

* ``pipe(hook, **args)``: each enabled implementer in order; returns the final value (or tuple).
* ``first(hook, **args)``: the first enabled implementer's non-None result (None: declined).
* ``collect(hook, **args)``: ``[(extension name, result), ...]`` for each enabled implementer.

Extensions are imported only when enabled (or loaded on purpose with ``load``); the others are
listed from their files (``static_info.py``): a disabled extension's import-time code never runs.
On a name clash a later directory wins (the app lists its own folder, then the data dir's), and
any folder wins over an installed package's entry point.

Isolation: an exception in a hook is logged, recorded in ``failures()``, and the extension is
disabled for this session (the saved enabled list is left alone, so a restart retries it). A pipe
goes on with the value as it was before the failing extension (in-place changes it made to
mutable arguments before raising are not undone).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webui.compat.bridge import SLOT, CompatBridge
from webui.errors import UserFacingError
from webui.plugins import listing, upstream
from webui.plugins.dispatch import (
    Failure,
    HookResultError,
    complete_args,
    guard_iterator,
    hook_spec,
    pipe_result,
)
from webui.plugins.extension import LoadedExtension, inspect_extension
from webui.plugins.health import error_problem, settings_problems
from webui.plugins.hookspecs import HOOKS, HookSpec
from webui.plugins.loader import (
    ENTRY_POINT_GROUP,
    ExtensionSource,
    discover_directories,
    discover_entry_points,
    first_by_name,
    import_source,
    requirements_problems,
    safe_module_name,
)
from webui.plugins.params import ParamError, ParamSpec
from webui.plugins.sampler_dispatch import SamplerDispatch
from webui.plugins.static_info import StaticInfo, read_static
from webui.plugins.store import ENABLED_KEY, MemoryStore, SettingsStore
from webui.problems import Problem, Problems

log = logging.getLogger(__name__)

MAX_FAILURES = 200


class ExtensionError(UserFacingError):
    """An extension cannot be loaded or enabled; the message says why and what to do."""


@dataclass(frozen=True)
class ExtensionInfo:
    """A snapshot of one discovered extension, for the UI."""

    name: str
    display_name: str
    source: str  # "directory" or "entry_point"
    location: str
    loaded: bool
    enabled: bool
    hooks: tuple[str, ...]
    is_tab: bool
    warnings: tuple[str, ...]
    error: str | None  # why the last load/enable attempt failed, or what its files show is wrong
    description: str = ""  # the first paragraph of its docstring (or README)
    upstream: bool = False  # written for text-generation-webui (imports its ``modules``)


class ExtensionManager(SamplerDispatch):
    """Extensions found in ``directories`` (``<dir>/<name>/script.py``; a later directory wins on a
    name clash) and in the ``entry_point_group`` of installed packages.

    ``compat`` is the bridge text-generation-webui's ``modules`` package reads the app through
    (``webui/compat``); the app attaches its engine, settings and chat service to it."""

    def __init__(self, directories: Iterable[str | Path] = (), *,
                 entry_point_group: str | None = ENTRY_POINT_GROUP,
                 store: SettingsStore | None = None, problems: Problems | None = None) -> None:
        self._directories = [Path(d) for d in directories]
        self._problems = problems  # where extensions that cannot load are reported (source "extensions")
        self._shadowed: list[Problem] = []
        self._requested_by: dict[str, str] = {}  # a name asked for that may not exist -> who asked
        self._group = entry_point_group
        self._store: SettingsStore = store if store is not None else MemoryStore()
        self._lock = threading.RLock()
        self._sources: dict[str, ExtensionSource] = {}
        self._loaded: dict[str, LoadedExtension] = {}
        self._order: list[str] = []
        self._errors: dict[str, str] = {}
        self._static: dict[str, StaticInfo] = {}  # what each directory extension's files say
        self._static_errors: dict[str, str] = {}  # problems its files show, found without importing it
        self.compat = CompatBridge()
        self.compat.enabled = self.enabled
        self._failures: deque[Failure] = deque(maxlen=MAX_FAILURES)
        self._module_prefix = f"webui_ext_{id(self):x}"
        self.discover()

    # ----------------------------------------------------------------- discovery and control

    def discover(self) -> list[str]:
        """(Re)scan the directories and entry points; returns the available names."""
        sources = discover_directories(reversed(self._directories))  # the last directory's wins
        if self._group:
            sources += discover_entry_points(self._group)
        chosen, notes = first_by_name(sources)
        with self._lock:
            # A loaded extension keeps the source it was imported from.
            self._sources = {**chosen, **{n: e.source for n, e in self._loaded.items()}}
            self._shadowed = [Problem.of("extension", s.location, note) for s, note in notes]
            self._static = {n: read_static(src.script) for n, src in self._sources.items() if src.script is not None}
            self._static_errors = {n: why for n, src in self._sources.items()
                                   if (why := listing.file_problem(n, src, self._static.get(n)))}
            self._publish()
            return sorted(self._sources)

    def available(self) -> list[ExtensionInfo]:
        with self._lock:
            return [self.info(name) for name in sorted(self._sources)]

    def info(self, name: str) -> ExtensionInfo:
        with self._lock:
            source = self._source(name)
            ext = self._loaded.get(name)
            static = self._static.get(name, StaticInfo())
            if ext is not None:
                doc = getattr(ext.obj, "__doc__", None) if source.kind == "entry_point" else None
                return ExtensionInfo(
                    name=name, display_name=ext.display_name, source=source.kind, location=source.location,
                    loaded=True, enabled=name in self._order, hooks=tuple(ext.hooks), is_tab=ext.is_tab,
                    warnings=tuple(ext.warnings), error=self._errors.get(name),
                    description=static.description or _first_paragraph(doc), upstream=ext.upstream)
            return ExtensionInfo(
                name=name, display_name=static.display_name or name, source=source.kind, location=source.location,
                loaded=False, enabled=name in self._order, hooks=static.hooks, is_tab=static.is_tab,
                warnings=static.notes, error=self._errors.get(name) or self._static_errors.get(name),
                description=static.description, upstream=static.uses_upstream)

    def load(self, name: str) -> LoadedExtension:
        """Import an extension (once) without enabling it; raises ExtensionError."""
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
            try:
                ext = self._import(name)
            except ExtensionError as exc:
                if self._errors.get(name) != str(exc):
                    self._errors[name] = str(exc)
                    self._publish()
                raise
            if self._errors.pop(name, None) is not None:
                self._publish()
            self._loaded[name] = ext
            return ext

    def check_all(self) -> None:
        """Rescan; import the enabled extensions (each that cannot load is reported) and check the
        others from their files only (unreadable script, unmet requirements, ``modules`` this app
        lacks): a disabled extension is never imported."""
        for name in self.discover():
            if name in self._order or name in self._errors:  # enabled, or asked for and refused
                with contextlib.suppress(ExtensionError):  # recorded in info(name).error, and reported
                    self.load(name)
        self._publish()

    def enable(self, name: str, position: int | None = None, *, persist: bool = True) -> None:
        """Enable ``name`` at ``position`` in the order (default: last); moves it if enabled."""
        with self._lock:
            ext = self.load(name)
            self._setup(ext)
            if name in self._order:
                self._order.remove(name)
            self._order.insert(len(self._order) if position is None else position, name)
            if persist:
                self._save_order()

    def disable(self, name: str, *, persist: bool = True) -> None:
        with self._lock:
            if name in self._order:
                self._order.remove(name)
            if persist:
                self._save_order()

    def set_enabled(self, names: Sequence[str], *, persist: bool = True, origin: str = "") -> dict[str, str]:
        """Enable exactly ``names``, in that order. Returns {name: why} for those refused (also
        reported to ``problems``; ``origin``: who asked, shown as the file of an unknown name)."""
        problems: dict[str, str] = {}
        with self._lock:
            order: list[str] = []
            for name in dict.fromkeys(names):
                self._requested_by.setdefault(name, origin or "the enabled list")
                try:
                    self._setup(self.load(name))
                    order.append(name)
                except ExtensionError as exc:
                    problems[name] = str(exc)
                    if self._problems is None:
                        log.error("%s", exc)
            self._order = order
            if persist:
                self._save_order()
        return problems

    def restore_enabled(self, default: Sequence[str] = ()) -> dict[str, str]:
        """Enable the saved list (or ``default`` when none was saved, or the file cannot be read:
        that is reported to ``problems`` and the file is left alone); see set_enabled."""
        try:
            saved = self._store.load(ENABLED_KEY).get("order")
        except UserFacingError as exc:  # the settings file is broken: start with the default set
            if self._problems is None:
                log.error("%s", exc)
            saved = None
        names = [str(n) for n in saved] if isinstance(saved, list) else list(default)
        return self.set_enabled(names, persist=False, origin=str(getattr(self._store, "path", "")))

    def enabled(self) -> list[str]:
        with self._lock:
            return list(self._order)

    def is_enabled(self, name: str) -> bool:
        return name in self._order

    def problems(self) -> list[Problem]:
        """Extensions that cannot be loaded or enabled, shadowed ones, saved settings that cannot be used."""
        with self._lock:
            errors = {**{n: m for n, m in self._static_errors.items() if n not in self._loaded}, **self._errors}
            failed = [error_problem(n, m, self._sources.get(n), self._requested_by.get(n, ""))
                      for n, m in sorted(errors.items())]
            return [*failed, *self._shadowed, *settings_problems(self._store, list(self._loaded.values()))]

    def _publish(self) -> None:
        if self._problems is not None:
            self._problems.report("extensions", self.problems())

    def warnings(self, name: str) -> list[str]:
        """The warnings from loading ``name`` (imports it)."""
        return list(self.load(name).warnings)

    def failures(self) -> list[Failure]:
        return list(self._failures)

    def clear_failures(self) -> None:
        self._failures.clear()

    # ----------------------------------------------------------------- settings (params)

    def param_specs(self, name: str) -> dict[str, ParamSpec]:
        """The settings; of an extension not imported, those its literal ``params`` dict declares."""
        ext = self._loaded.get(name)
        return dict(ext.param_specs) if ext is not None else self._static_specs(name)

    def get_params(self, name: str) -> dict[str, Any]:
        ext = self._loaded.get(name)
        if ext is not None:
            return dict(ext.params)
        return listing.static_values(self._static.get(name), self._static_specs(name), self._saved_values(name))

    def set_param(self, name: str, key: str, value: Any) -> Any:
        """Set one setting (coerced to its type), persist it, return the stored value. An extension
        that is not imported gets it when it is (the value is saved)."""
        ext = self._loaded.get(name)
        specs = ext.param_specs if ext is not None else self._static_specs(name)
        spec = specs.get(key)
        if spec is None:
            raise ParamError(f"extension {name!r} has no setting {key!r} "
                             f"(it has: {', '.join(specs) or 'none'})")
        try:
            coerced = spec.coerce(value)
        except ParamError as exc:
            raise ParamError(f"extension {name!r}: {exc}") from None
        with self._lock:
            if ext is not None:
                ext.params[key] = coerced
                self._save_params(ext)
            else:
                saved = self._saved_values(name)
                saved[key] = coerced
                self._store.save(name, {k: v for k, v in saved.items() if k in specs and v != specs[k].default})
        return coerced

    def reset_params(self, name: str) -> None:
        ext = self._loaded.get(name)
        with self._lock:
            if ext is None:
                self._source(name)
                self._store.save(name, {})
                return
            for key, spec in ext.param_specs.items():
                ext.params[key] = spec.default
            self._save_params(ext)

    # ----------------------------------------------------------------- dispatch

    def implementers(self, hook: str, upstream: bool | None = None) -> list[str]:
        return [ext.name for ext in self._implementers(hook, upstream)]

    def pipe(self, hook: str, /, *, upstream: bool | None = None, **args: Any) -> Any:
        """Run a modifier hook as a pipe; returns the value (a tuple for several returns).
        ``upstream``: only the extensions written for text-generation-webui (True), or only the others."""
        spec = hook_spec(hook, "pipe")
        values = complete_args(spec, args)
        for ext in self._implementers(hook, upstream):
            ok, result = self._invoke(ext, spec, values)
            if not ok:
                continue
            try:
                values.update(pipe_result(spec, result))
            except HookResultError as exc:
                self._fail(ext.name, hook, exc)
        if len(spec.returns) == 1:
            return values[spec.returns[0]]
        return tuple(values[r] for r in spec.returns)

    def first(self, hook: str, /, **args: Any) -> Any:
        """The first enabled implementer's result that is not None (an isolated iterator for
        generator hooks). None when every implementer declined (returned None) or failed."""
        spec = hook_spec(hook, "first")
        values = complete_args(spec, args)
        for ext in self._implementers(hook):
            ok, result = self._invoke(ext, spec, values)
            if ok and result is not None:
                return guard_iterator(ext.name, hook, result, self._fail) if spec.generator else result
        return None

    def collect(self, hook: str, /, **args: Any) -> list[tuple[str, Any]]:
        spec = hook_spec(hook, "collect")
        values = complete_args(spec, args)
        results = []
        for ext in self._implementers(hook):
            ok, result = self._invoke(ext, spec, values)
            if ok:
                results.append((ext.name, result))
        return results

    def call(self, name: str, hook: str, /, **args: Any) -> Any:
        """Call one extension's hook (e.g. ``ui`` inside its own tab); None if it failed."""
        spec = HOOKS[hook]
        ext = self.load(name)
        if hook not in ext.hooks:
            return None
        return self._invoke(ext, spec, complete_args(spec, args))[1]

    def custom_css(self) -> str:
        return "\n".join(str(css) for _, css in self.collect("custom_css") if css)

    def custom_js(self) -> str:
        return "\n".join(str(js) for _, js in self.collect("custom_js") if js)

    def ui_entries(self) -> list[tuple[str, str, bool]]:
        """(name, display name, is_tab) of enabled extensions with a ``ui()``, in order."""
        return [(e.name, e.display_name, e.is_tab) for e in self._implementers("ui")]

    # ----------------------------------------------------------------- internals

    def _source(self, name: str) -> ExtensionSource:
        source = self._sources.get(name)
        if source is None:
            self.discover()
            source = self._sources.get(name)
        if source is None:
            raise ExtensionError(listing.built_in_now(name) or f"unknown extension {name!r}; available: "
                                 f"{', '.join(sorted(self._sources)) or 'none'}")
        return source

    def _import(self, name: str) -> LoadedExtension:
        source = self._source(name)
        try:
            missing = requirements_problems(source)
        except (OSError, UnicodeDecodeError) as exc:
            raise ExtensionError(f"extension {name!r}: cannot read {source.requirements_file}: {exc}") from exc
        if missing:
            raise ExtensionError(
                f"extension {name!r} needs packages that are not installed or too old: "
                f"{', '.join(missing)}. Install them with: pip install -r {source.requirements_file}")
        static = self._static.get(name, StaticInfo())
        package_name = safe_module_name(self._module_prefix, name)
        try:
            upstream.prepare_import(self.compat, list(reversed(self._directories)))
            obj = import_source(source, package_name)
        except ModuleNotFoundError as exc:
            raise ExtensionError(upstream.missing_module_message(name, exc.name, source)) from exc
        except ImportError as exc:
            message = upstream.import_error_message(name, exc) or f"extension {name!r} failed to import: {exc}"
            raise ExtensionError(message) from exc
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - sys.exit() or any error in the script: not loaded
            log.debug("extension %s failed to import", name, exc_info=True)
            raise ExtensionError(f"extension {name!r} failed to import: "
                                 f"{type(exc).__name__}: {exc}") from exc
        upstream.after_import(source, package_name)
        try:
            ext = inspect_extension(name, source, obj)
        except Exception as exc:  # noqa: BLE001 - e.g. a params_meta entry that is not a dict
            raise ExtensionError(f"extension {name!r} declares invalid settings (params / params_meta): "
                                 f"{type(exc).__name__}: {exc}") from exc
        ext.upstream = static.uses_upstream
        for warning in ext.warnings:
            log.warning("extension %s: %s", name, warning)
        self._apply_saved_params(ext)
        return ext

    def _static_specs(self, name: str) -> dict[str, ParamSpec]:
        self._source(name)
        return listing.static_specs(self._static.get(name))

    def _saved_values(self, name: str) -> dict[str, Any]:
        return listing.saved_values(self._store, name, self._static_specs(name))

    def _setup(self, ext: LoadedExtension) -> None:
        if ext.setup_done:
            return
        if "setup" in ext.hooks:
            ok, _ = self._invoke(ext, HOOKS["setup"], {})
            if not ok:
                message = f"extension {ext.name!r}: setup() failed: {self._failures[-1].message}"
                self._errors[ext.name] = message
                self._publish()
                raise ExtensionError(message)
        ext.setup_done = True
        if self._errors.pop(ext.name, None) is not None:  # a setup() that failed before now passed
            self._publish()

    def _apply_saved_params(self, ext: LoadedExtension) -> None:
        try:
            saved = self._store.load(ext.name)
        except UserFacingError as exc:  # a broken settings file: defaults (reported by problems())
            ext.warnings.append(f"saved settings ignored: {exc}")
            return
        for key, value in saved.items():
            spec = ext.param_specs.get(key)
            if spec is None:
                continue  # a setting the extension no longer has
            try:
                ext.params[key] = spec.coerce(value)
            except ParamError as exc:
                ext.warnings.append(f"saved setting ignored: {exc}")

    def _save_params(self, ext: LoadedExtension) -> None:
        changed = {k: ext.params[k] for k, s in ext.param_specs.items()
                   if s.editable and ext.params.get(k) != s.default}
        self._store.save(ext.name, changed)

    def _save_order(self) -> None:
        self._store.save(ENABLED_KEY, {"order": list(self._order)})

    def _implementers(self, hook: str, upstream: bool | None = None) -> list[LoadedExtension]:
        with self._lock:
            return [self._loaded[n] for n in self._order if hook in self._loaded[n].hooks
                    and (upstream is None or self._loaded[n].upstream == upstream)]

    def _invoke(self, ext: LoadedExtension, spec: HookSpec,
                values: Mapping[str, Any]) -> tuple[bool, Any]:
        SLOT.bridge = self.compat  # what text-generation-webui's ``modules`` reads during the call
        try:
            back = None
            if ext.upstream:  # written for text-generation-webui: its history shape
                values, back = upstream.adapt_history(spec.name, values)
            extras = tuple(k for k in values if k not in spec.args)
            call_args, kwargs = ext.plan(spec.name, extras).bind(values)
            with upstream.calling(ext.upstream, spec.name):
                result = ext.hooks[spec.name](*call_args, **kwargs)
            return True, back(result) if back is not None else result
        except Exception as exc:  # noqa: BLE001 - isolation: any extension error is reported
            self._fail(ext.name, spec.name, exc)
            return False, None

    def _fail(self, name: str, hook: str, exc: BaseException) -> None:
        """Record a hook failure and disable the extension for this session."""
        failure = Failure.from_exception(name, hook, exc, time.time())
        log.error("extension %s failed in %s, disabling it:\n%s", name, hook, failure.traceback)
        self._failures.append(failure)
        with self._lock:
            if name in self._order:
                self._order.remove(name)


def _first_paragraph(doc: str | None) -> str:
    return (doc or "").strip().split("\n\n")[0].replace("\n", " ")
