"""Which parts of a data dir are user content, and the stores an export reads and an import writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from webui.archive.layout import (
    IMPORTABLE_SETTINGS,
    JSON_SETTINGS,
    LIBRARY_DIRS,
    LORAS_DIR,
    SERVER_ONLY_SETTINGS,
    SETTINGS_YAML,
    ArchiveProblem,
    safe_part,
)
from webui.bounded_parse import load_yaml
from webui.config import Settings
from webui.engine.options import NOT_SAVED
from webui.storage.db import ensure_data_dir, open_database, sqlite_url
from webui.storage.notebook import NotebookRepository
from webui.storage.personas import PersonaRepository
from webui.storage.repository import ChatRepository


@dataclass
class DataDir:
    """A data dir with its chat, persona and Notebook prompt stores (``db``: the engine to close, when
    we opened it; ``notebook`` None: an app without the Notebook's store, whose prompts are left out)."""

    path: Path
    models_path: Path
    chats: ChatRepository
    personas: PersonaRepository
    db: Engine | None = None
    notebook: NotebookRepository | None = None

    @classmethod
    def open(cls, settings: Settings) -> DataDir:
        """Open (create, migrate) the data dir and database ``settings`` name, as the app would."""
        ensure_data_dir(settings.data_dir)
        db = open_database(settings.database_url or sqlite_url(settings.data_dir))
        return cls(settings.data_dir, settings.models_path, ChatRepository(db), PersonaRepository(db), db,
                   NotebookRepository(db))

    def close(self) -> None:
        if self.db is not None:
            self.db.dispose()


def library_files(data_dir: Path) -> Iterator[tuple[str, Path]]:
    """``(archive name, file)`` for the characters, presets, templates and LoRA metadata in ``data_dir``."""
    for folder, suffixes in LIBRARY_DIRS.items():
        directory = data_dir / folder
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                if path.is_file() and safe_part(path.name) and path.suffix.lower() in suffixes:
                    yield f"{folder}/{path.name}", path
    loras = data_dir / LORAS_DIR
    if loras.is_dir():
        for adapter in sorted(p for p in loras.iterdir() if p.is_dir() and safe_part(p.name)):
            for path in sorted(adapter.glob("*.json")):
                if path.is_file() and safe_part(path.name):
                    yield f"{LORAS_DIR}/{adapter.name}/{path.name}", path


def model_files(models_path: Path) -> Iterator[tuple[str, Path]]:
    """``(path relative to the models dir, file)`` for every file there (hidden ones and partial
    downloads, which start with a dot, left out)."""
    if not models_path.is_dir():
        return
    for path in sorted(models_path.rglob("*")):
        rel = path.relative_to(models_path)
        if path.is_file() and all(safe_part(part) for part in rel.parts):
            yield rel.as_posix(), path


UNTRUSTED_MODEL_OPTIONS = frozenset({"trust_remote_code", *NOT_SAVED})


def secret_settings() -> dict[str, str]:
    """settings.yaml keys left out of an archive, with why."""
    return {**SERVER_ONLY_SETTINGS, **{name: "an API key" for name in NOT_SAVED}}


def exported_settings_yaml(path: Path) -> tuple[bytes, list[str]]:
    """settings.yaml as it goes into an archive, and a note per key left out.

    Without such keys the file is copied byte for byte (comments kept); otherwise the remaining
    mapping is written anew.
    """
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw.decode("utf-8-sig")) or {}
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ArchiveProblem(f"Cannot read {path}: {exc}. Fix it (the app would not start with it either).") from exc
    if not isinstance(data, dict):
        raise ArchiveProblem(f"{path} must be a YAML mapping of setting names to values.")
    secrets = secret_settings()
    dropped = [key for key in data if key in secrets]
    if not dropped:
        return raw, []
    kept = {key: value for key, value in data.items() if key not in secrets}
    notes = [f"settings.yaml: {key} ({secrets[key]})" for key in dropped]
    return yaml.safe_dump(kept, sort_keys=False, allow_unicode=True).encode("utf-8"), notes


def imported_settings_yaml(raw: bytes) -> tuple[bytes | None, list[str]]:
    """An archive's settings.yaml as an import may write it, and the keys it leaves out.

    Only the keys of ``IMPORTABLE_SETTINGS`` with a value this app accepts are kept: a settings file
    decides which model runs, where chats are stored and sent, who can connect and what code runs,
    and an archive is not trusted with that (``listen``, ``database_url``, ``model``, ``auth_file``,
    ``trust_remote_code``... are set by whoever runs the install). Without left-out keys the file
    is kept byte for byte (comments too); otherwise the remaining mapping is written anew; None
    when nothing is left (or the file is not a YAML mapping).
    """
    try:
        data = load_yaml(raw.decode("utf-8-sig")) or {}
    except (UnicodeDecodeError, yaml.YAMLError):
        return None, ["settings.yaml (not readable YAML)"]
    if not isinstance(data, dict):
        return None, ["settings.yaml (not a mapping of settings)"]
    kept, dropped = {}, []
    for key, value in data.items():
        if key in IMPORTABLE_SETTINGS and _valid_setting(key, value):
            kept[key] = value
        else:
            dropped.append(str(key))
    notes = [f"settings.yaml: {key}" for key in dropped]
    if not dropped:
        return raw, []
    if not kept:
        return None, notes
    return yaml.safe_dump(kept, sort_keys=False, allow_unicode=True).encode("utf-8"), notes


def _valid_setting(key: str, value: Any) -> bool:
    """Whether the app would start with ``key: value`` in its settings file."""
    try:
        Settings(**{key: value})
    except (ValidationError, TypeError, ValueError):
        return False
    return True


def imported_model_settings(entries: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """model-settings.json entries as an import adds them: without ``trust_remote_code`` (whether a
    model's own Python code runs is not an archive's decision) nor API keys; and how many were cut."""
    cut = 0
    out: dict[str, Any] = {}
    for key, entry in entries.items():
        if isinstance(entry, dict) and isinstance(entry.get("options"), dict):
            options = {k: v for k, v in entry["options"].items() if k not in UNTRUSTED_MODEL_OPTIONS}
            cut += len(entry["options"]) - len(options)
            entry = {**entry, "options": options}
        out[key] = entry
    return out, cut


def exported_json_settings(path: Path) -> bytes:
    """model-settings.json or extensions.json as it goes into an archive (API keys never)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ArchiveProblem(f"Cannot read {path}: {exc}. Fix or delete it, then export again.") from exc
    if path.name == "model-settings.json" and isinstance(data, dict):
        data = {key: _without_secrets(entry) for key, entry in data.items()}
    return json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")


def _without_secrets(entry: Any) -> Any:
    if isinstance(entry, dict) and isinstance(entry.get("options"), dict):
        return {**entry, "options": {k: v for k, v in entry["options"].items() if k not in NOT_SAVED}}
    return entry


def settings_files(data_dir: Path) -> Iterator[tuple[str, Path]]:
    """The settings files present in ``data_dir``."""
    for name in (SETTINGS_YAML, *JSON_SETTINGS):
        if (data_dir / name).is_file():
            yield name, data_dir / name
