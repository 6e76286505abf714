"""What the ExtensionManager reports as problems: extensions that cannot load, and saved settings
(``extensions.json``) that cannot be read or used. See :mod:`webui.problems`."""

from __future__ import annotations

from collections.abc import Iterable

from webui.errors import UserFacingError
from webui.plugins.extension import LoadedExtension
from webui.plugins.loader import ExtensionSource
from webui.plugins.params import ParamError
from webui.plugins.store import ENABLED_KEY, SettingsStore
from webui.problems import Problem


def store_name(store: SettingsStore) -> str:
    """The settings file's path, or a description of an in-memory store."""
    return str(getattr(store, "path", "extension settings"))


def error_problem(name: str, message: str, source: ExtensionSource | None, requested_by: str) -> Problem:
    """An extension that cannot be loaded or enabled: its file (its requirements.txt when those are
    unmet; who asked for it when no extension has that name) and why."""
    if source is None:
        return Problem.of("extension", requested_by or name, message)
    requirements = source.requirements_file
    if requirements is not None and "requirements.txt" in message and str(requirements) in message:
        return Problem.of("extension", requirements, message)
    return Problem.of("extension", source.location, message)


def settings_problems(store: SettingsStore, loaded: Iterable[LoadedExtension]) -> list[Problem]:
    """The settings file when it cannot be read; else each saved value an extension cannot use."""
    where = store_name(store)
    try:
        store.load(ENABLED_KEY)
    except UserFacingError as exc:
        return [Problem.of("extension settings", where, exc)]
    problems = []
    for ext in loaded:
        try:
            saved = store.load(ext.name)
        except UserFacingError as exc:  # the file changed since the probe above
            return [Problem.of("extension settings", where, exc)]
        for key, value in saved.items():
            spec = ext.param_specs.get(key)
            if spec is None:
                continue  # a setting the extension no longer has: harmless, dropped on the next save
            try:
                spec.coerce(value)
            except ParamError as exc:
                problems.append(Problem.of("extension settings", where,
                                           f"extension {ext.name!r}: saved setting ignored: {exc}"))
    return problems
