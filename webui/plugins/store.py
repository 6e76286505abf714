"""Where extension settings and the enabled list are persisted: a protocol the app implements.

The manager saves each extension's settings under the extension's name, and the enabled list
(in order) under ``ENABLED_KEY``, a name no extension directory can clash with in practice.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Protocol

from webui.atomic_file import write_json_atomic
from webui.bounded_parse import load_json
from webui.errors import UserFacingError

ENABLED_KEY = "@enabled"


class SettingsFileError(UserFacingError):
    """The extension settings file exists but cannot be read as JSON."""


class SettingsStore(Protocol):
    """Persistence for extension settings; values are JSON-compatible dicts."""

    def load(self, name: str) -> dict[str, Any]:
        """The saved dict for ``name``, or {} when nothing was saved."""
        ...

    def save(self, name: str, values: dict[str, Any]) -> None:
        """Replace the saved dict for ``name``."""
        ...


class MemoryStore:
    """A SettingsStore in memory (tests, or when nothing should be written)."""

    def __init__(self, initial: dict[str, dict[str, Any]] | None = None) -> None:
        self.data: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (initial or {}).items()}

    def load(self, name: str) -> dict[str, Any]:
        return dict(self.data.get(name, {}))

    def save(self, name: str, values: dict[str, Any]) -> None:
        self.data[name] = dict(values)


class JsonFileStore:
    """A SettingsStore in one JSON file (``{name: {...}}``), written atomically."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict[str, Any]]:
        """The file's settings; a broken file is an error (not {}), so a save never overwrites it."""
        try:
            data = load_json(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SettingsFileError(
                f"Cannot read the extension settings file {self.path} ({exc}). Fix or delete the file."
            ) from exc
        if not isinstance(data, dict):  # refused, not read as {}: a save would then overwrite the file
            raise SettingsFileError(
                f"The extension settings file {self.path} must hold a JSON object of extension names. "
                "Fix or delete the file."
            )
        return data

    def load(self, name: str) -> dict[str, Any]:
        with self._lock:
            value = self._read().get(name, {})
        return dict(value) if isinstance(value, dict) else {}

    def save(self, name: str, values: dict[str, Any]) -> None:
        with self._lock:
            data = self._read()
            data[name] = values
            write_json_atomic(self.path, data, ensure_ascii=False)
