"""Write one archive of a data dir's user content (see ``webui.archive.layout`` for what it holds)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from webui import __version__
from webui.archive.data import (
    DataDir,
    exported_json_settings,
    exported_settings_yaml,
    library_files,
    model_files,
    settings_files,
)
from webui.archive.layout import (
    ARCHIVE_FORMAT,
    ARCHIVE_VERSION,
    CHATS_DIR,
    MANIFEST,
    MODELS_DIR,
    NOTEBOOK_FILE,
    PERSONA_AVATARS_DIR,
    PERSONAS_FILE,
    SETTINGS_YAML,
    ArchiveProblem,
)
from webui.archive.notebook import exported_prompts
from webui.engine.catalog import scan_models_dir

CHUNK = 1024 * 1024
COUNTS = (
    "chats", "messages", "message_versions", "personas", "notebook_prompts", "character_files", "presets",
    "instruction_templates",
    "loras", "settings_files", "models_listed", "model_files_copied",
)
BIG_FILE = 1024 * 2**20  # members this large are written with zip64 headers


@dataclass(frozen=True)
class ExportScope:
    """Whose chats, personas and Notebook prompts go in, and whether this install's own files do.

    ``owners``: account names, None meaning the anonymous history (no accounts); ``None`` for the
    whole tuple means everyone's. ``server_files``: settings.yaml, model-settings.json,
    extensions.json and the models list (an export from a shared server's page leaves them out).
    ``without_owners``: write the chats and personas without an owner (a browser's private
    history, whose users row means nothing elsewhere, then imports as the importer's own).
    """

    owners: tuple[str | None, ...] | None = None
    server_files: bool = True
    without_owners: bool = False


@dataclass
class ExportSummary:
    path: Path
    counts: dict[str, int]
    left_out: list[str] = field(default_factory=list)


class _Writer:
    """Adds members to the zip, recording each one's size and sha256 for the manifest."""

    def __init__(self, zf: zipfile.ZipFile, when: datetime) -> None:
        self.zf = zf
        self.date_time = when.timetuple()[:6]
        self.files: dict[str, dict[str, Any]] = {}

    def _info(self, name: str, packed: bool) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED if packed else zipfile.ZIP_STORED
        info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
        return info

    def add_bytes(self, name: str, data: bytes, *, packed: bool = True) -> None:
        self.zf.writestr(self._info(name, packed), data)
        self.files[name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    def add_json(self, name: str, data: Any) -> None:
        self.add_bytes(name, json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8"))

    def add_file(self, name: str, path: Path, *, packed: bool = True) -> None:
        digest, size = hashlib.sha256(), 0
        with path.open("rb") as src, self.zf.open(
            self._info(name, packed), "w", force_zip64=path.stat().st_size >= BIG_FILE
        ) as out:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        self.files[name] = {"size": size, "sha256": digest.hexdigest()}


def resolve_owners(source: DataDir, scope: ExportScope) -> list[tuple[str | None, int | None]]:
    """``(account name, user id)`` per owner in scope; an unknown account name is an error."""
    accounts = source.chats.users()
    if scope.owners is None:
        return [(None, None), *((name, accounts[name]) for name in sorted(accounts, key=str.lower))]
    owners: list[tuple[str | None, int | None]] = []
    for name in scope.owners:
        if name is not None and name not in accounts:
            known = ", ".join(sorted(accounts)) or "none yet"
            raise ArchiveProblem(f"No account named {name!r} in this data dir (accounts: {known}).")
        owners.append((name, None if name is None else accounts[name]))
    return owners


def _chats(w: _Writer, source: DataDir, owners: list[tuple[str | None, int | None]], counts: dict[str, int]) -> None:
    n = 0
    for owner, user_id in owners:
        for conv in reversed(source.chats.list_conversations(user_id)):  # oldest first
            data = source.chats.export_conversation(conv.id, user_id)
            n += 1
            w.add_json(f"{CHATS_DIR}/{n:06d}.json", {**data, "owner": owner})
            counts["messages"] += len(data["messages"])
            counts["message_versions"] += sum(len(m["versions"]) for m in data["messages"])
    counts["chats"] = n


def _personas(w: _Writer, source: DataDir, owners: list[tuple[str | None, int | None]]) -> int:
    entries = []
    for owner, user_id in owners:
        for persona in source.personas.list(user_id):
            avatar = None
            if persona.avatar:
                avatar = f"{PERSONA_AVATARS_DIR}/{len(entries) + 1:06d}.png"
                w.add_bytes(avatar, persona.avatar, packed=False)
            entries.append(
                {"owner": owner, "name": persona.name, "description": persona.description, "avatar": avatar}
            )
    w.add_json(PERSONAS_FILE, entries)
    return len(entries)


def _library(w: _Writer, source: DataDir, counts: dict[str, int]) -> None:
    for name, path in library_files(source.path):
        w.add_file(name, path, packed=not name.endswith(".png"))
        folder = name.split("/", 1)[0]
        key = {"characters": "character_files", "instruction-templates": "instruction_templates"}.get(folder, folder)
        counts[key] += 1


def _settings(w: _Writer, source: DataDir, left_out: list[str]) -> int:
    n = 0
    for name, path in settings_files(source.path):
        if name == SETTINGS_YAML:
            data, notes = exported_settings_yaml(path)
            left_out.extend(notes)
        else:
            data = exported_json_settings(path)
        w.add_bytes(name, data)
        n += 1
    return n


def _models(w: _Writer, source: DataDir, include: bool) -> list[dict[str, Any]]:
    """The models this install knows (the models dir and model-settings.json), copied if asked."""
    models: dict[str, dict[str, Any]] = {}
    for entry in scan_models_dir(source.models_path):
        models[entry.path] = {"name": entry.label, "path": entry.path, "loader": entry.loader, "copied": include}
    saved = source.path / "model-settings.json"
    if saved.is_file():
        try:
            data = json.loads(saved.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        for key, entry in (data.items() if isinstance(data, dict) else ()):
            loader = entry.get("loader") if isinstance(entry, dict) else None
            models.setdefault(key, {"name": Path(key).name or key, "path": key, "loader": loader, "copied": False})
    if include:
        for rel, path in model_files(source.models_path):
            w.add_file(f"{MODELS_DIR}/{rel}", path, packed=False)
    return list(models.values())


def export_archive(
    source: DataDir, dest: Path, scope: ExportScope | None = None, *, include_models: bool = False,
    now: datetime | None = None,
) -> ExportSummary:
    """Write the archive to ``dest`` (a new file; it is written beside it first, then renamed).

    Raises ArchiveProblem when ``dest`` exists, an account is unknown or the disk is full.
    """
    scope = scope or ExportScope()
    include_models = include_models and scope.server_files
    when = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    dest = Path(dest).expanduser()
    if dest.exists():
        raise ArchiveProblem(f"{dest} already exists; choose another file name (nothing was overwritten).")
    if not dest.parent.is_dir():
        raise ArchiveProblem(f"Cannot write {dest}: the folder {dest.parent} does not exist.")
    owners = resolve_owners(source, scope)
    written = [(None, user_id) for _name, user_id in owners] if scope.without_owners else owners
    counts = dict.fromkeys(COUNTS, 0)
    left_out: list[str] = []
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
            w = _Writer(zf, when)
            _chats(w, source, written, counts)
            counts["personas"] = _personas(w, source, written)
            if source.notebook is not None:
                prompts = exported_prompts(source.notebook, written)
                w.add_json(NOTEBOOK_FILE, prompts)
                counts["notebook_prompts"] = len(prompts)
            _library(w, source, counts)
            models: list[dict[str, Any]] = []
            if scope.server_files:
                counts["settings_files"] = _settings(w, source, left_out)
                models = _models(w, source, include_models)
            counts["models_listed"] = len(models)
            counts["model_files_copied"] = sum(1 for name in w.files if name.startswith(f"{MODELS_DIR}/"))
            manifest = {
                "format": ARCHIVE_FORMAT,
                "version": ARCHIVE_VERSION,
                "app_version": __version__,
                "created": when.isoformat().replace("+00:00", "Z"),
                "users": "all" if scope.owners is None else [name for name, _ in written],
                "accounts": sorted(name for name, _ in written if name is not None),
                "counts": counts,
                "models_dir": str(source.models_path.expanduser().resolve()),
                "models": models,
                "left_out": left_out,
                "files": w.files,
            }
            w.add_bytes(MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))
        os.replace(tmp, dest)
    except OSError as exc:
        raise ArchiveProblem(f"Cannot write {dest}: {exc.strerror or exc} (nothing was written).") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return ExportSummary(dest, counts, left_out)
