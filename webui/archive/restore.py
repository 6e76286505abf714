"""Check an archive completely, then import it into a data dir without overwriting anything there.

Nothing is written until every member has been checked: its name (``layout.classify``), its
declared size and compression ratio (zip-bomb guards), its size and sha256 against the manifest,
and every chat and the persona list parsed. Then, for what is already there:

- chats are always added (importing one archive twice adds its chats twice);
- a persona whose name the owner already uses is kept, the imported one skipped;
- a file (character, avatar, preset, template, LoRA metadata, settings.yaml, model file) that
  exists is kept and the imported one skipped (identical ones are counted as "already there");
- model-settings.json and extensions.json are merged entry by entry: entries you have are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from webui.archive.data import DataDir
from webui.archive.layout import (
    ARCHIVE_FORMAT,
    ARCHIVE_VERSION,
    MANIFEST,
    SETTINGS_FILES,
    ArchiveLimits,
    ArchiveProblem,
    Member,
    check_entry,
    check_size,
    classify,
)
from webui.atomic_file import write_json_atomic
from webui.chat.transfer import ImportProblem, parse_chat_file

CHUNK = 1024 * 1024
MAX_MANIFEST_BYTES = 16 * 2**20


@dataclass(frozen=True)
class ImportOptions:
    """``owner``: put every chat and persona in this account (None: the anonymous history) instead
    of the accounts they were exported from (``keep_owners``). ``server_files``: also import
    settings.yaml, model-settings.json, extensions.json and model files."""

    keep_owners: bool = True
    owner: str | None = None
    server_files: bool = True


@dataclass
class ImportReport:
    chats: int = 0
    personas: int = 0
    added: list[str] = field(default_factory=list)  # files written
    same: list[str] = field(default_factory=list)  # already there, identical
    kept: list[str] = field(default_factory=list)  # yours kept, the imported one skipped
    skipped: list[str] = field(default_factory=list)  # left out by the options
    owners: set[str] = field(default_factory=set)

    def lines(self) -> list[str]:
        """A summary for people, one line each."""
        out = [f"Imported {self.chats} chats and {self.personas} personas; {len(self.added)} files added"
               + (f", {len(self.same)} already there" if self.same else "") + "."]
        if self.owners:
            out.append("Chats went to the accounts: " + ", ".join(sorted(self.owners)) + ".")
        if self.kept:
            out.append("Kept yours, skipped the imported one: " + ", ".join(self.kept) + ".")
        if self.skipped:
            out.append("Not imported here: " + ", ".join(self.skipped) + ".")
        if any(name.split(" ")[0] in SETTINGS_FILES for name in self.added):
            out.append("Settings take effect when the app is next started.")
        return out


@dataclass
class CheckedArchive:
    """An archive that passed every check: its manifest, members and parsed chats and personas."""

    zf: zipfile.ZipFile
    manifest: dict[str, Any]
    members: dict[str, tuple[zipfile.ZipInfo, Member]]
    chats: list[dict[str, Any]]
    personas: list[dict[str, Any]]

    def read(self, name: str) -> bytes:
        info, _member = self.members[name]
        return _read_bounded(self.zf, info)


def _damaged(path: Path, why: object) -> ArchiveProblem:
    return ArchiveProblem(f"{path.name} is not a zip archive or is damaged ({why}); nothing was imported.")


def _read_bounded(zf: zipfile.ZipFile, info: zipfile.ZipInfo, sink: BinaryIO | None = None) -> bytes:
    """The member's bytes (or streamed into ``sink``), never more than its declared size."""
    parts: list[bytes] = []
    total = 0
    with zf.open(info) as src:
        while chunk := src.read(CHUNK):
            total += len(chunk)
            if total > info.file_size:
                raise ArchiveProblem(f"the archive member {info.filename!r} is larger than it declares; refused")
            if sink is None:
                parts.append(chunk)
            else:
                sink.write(chunk)
    return b"".join(parts)


def _sha256(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    digest = hashlib.sha256()
    with zf.open(info) as src:
        total = 0
        while chunk := src.read(CHUNK):
            total += len(chunk)
            if total > info.file_size:
                raise ArchiveProblem(f"the archive member {info.filename!r} is larger than it declares; refused")
            digest.update(chunk)
    return digest.hexdigest()


def _check_members(zf: zipfile.ZipFile, limits: ArchiveLimits) -> dict[str, tuple[zipfile.ZipInfo, Member]]:
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise ArchiveProblem(f"the archive holds {len(infos)} members, more than {limits.max_members}; refused")
    members: dict[str, tuple[zipfile.ZipInfo, Member]] = {}
    content = 0
    for info in infos:
        member = classify(info.filename)
        check_entry(info)
        check_size(info, member, limits)
        if info.filename in members:
            raise ArchiveProblem(f"the archive holds {info.filename!r} twice; refused")
        members[info.filename] = (info, member)
        content += 0 if member.kind == "model" else info.file_size
    if content > limits.max_content_bytes:
        raise ArchiveProblem(
            f"the archive would unpack to {content // 2**20} MiB besides models, more than the "
            f"{limits.max_content_bytes // 2**20} MiB allowed; refused"
        )
    return members


def _check_manifest(path: Path, zf: zipfile.ZipFile, members: dict[str, tuple[zipfile.ZipInfo, Member]]) -> dict:
    foreign = ArchiveProblem(f"{path.name} is not an archive exported by this app (no {ARCHIVE_FORMAT} manifest).")
    if MANIFEST not in members:
        raise foreign
    info = members[MANIFEST][0]
    if info.file_size > MAX_MANIFEST_BYTES:
        raise ArchiveProblem(f"{path.name}: its manifest is implausibly large; refused")
    try:
        manifest = json.loads(_read_bounded(zf, info).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise foreign from exc
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        raise foreign
    version = manifest.get("version")
    if not isinstance(version, int) or version < 1:
        raise foreign
    if version > ARCHIVE_VERSION:
        raise ArchiveProblem(
            f"{path.name} was made by a newer version of the app (archive format {version}; this one reads "
            f"up to {ARCHIVE_VERSION}). Update the app to import it."
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
        raise _damaged(path, "its manifest has no file list")
    listed, present = set(files), set(members) - {MANIFEST}
    if listed != present:
        extra = sorted(present - listed)
        what = f"{extra[0]!r} is not in its manifest" if extra else f"{sorted(listed - present)[0]!r} is missing"
        raise _damaged(path, what)
    for name in sorted(present):
        info = members[name][0]
        expected = files[name]
        if info.file_size != expected.get("size"):
            raise _damaged(path, f"{name!r} has another size than its manifest says")
        if _sha256(zf, info) != expected.get("sha256"):
            raise _damaged(path, f"{name!r} does not match its checksum")
    return manifest


def _parse_chats(archive: CheckedArchive) -> None:
    for name in sorted(n for n, (_i, m) in archive.members.items() if m.kind == "chat"):
        raw = archive.read(name)
        try:
            chat = parse_chat_file(raw, name)
            owner = json.loads(raw.decode("utf-8-sig")).get("owner")
        except (ImportProblem, ValueError, AttributeError) as exc:
            raise ArchiveProblem(f"the archive's {name} is not a chat ({exc}); nothing was imported") from exc
        if owner is not None and not (isinstance(owner, str) and owner.strip()):
            raise ArchiveProblem(f"the archive's {name} names no valid owner; nothing was imported")
        archive.chats.append({**chat, "owner": owner})


def _parse_personas(archive: CheckedArchive) -> None:
    if "personas.json" not in archive.members:
        return
    bad = ArchiveProblem("the archive's personas.json is not a list of personas; nothing was imported")
    try:
        entries = json.loads(archive.read("personas.json").decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad from exc
    if not isinstance(entries, list):
        raise bad
    for entry in entries:
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"].strip()):
            raise bad
        avatar = entry.get("avatar")
        found = archive.members.get(avatar) if isinstance(avatar, str) else None
        if avatar is not None and (found is None or found[1].kind != "persona_avatar"):
            raise ArchiveProblem(f"the archive's personas.json names a missing avatar {avatar!r}; nothing was imported")
        owner = entry.get("owner")
        if owner is not None and not (isinstance(owner, str) and owner.strip()):
            raise bad
        archive.personas.append(entry)


@contextmanager
def open_archive(path: Path, limits: ArchiveLimits | None = None) -> Iterator[CheckedArchive]:
    """Open and check ``path`` completely (see the module docstring); raises ArchiveProblem."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ArchiveProblem(f"No archive at {path}.")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise _damaged(path, exc) from exc
    with zf:
        try:
            members = _check_members(zf, limits or ArchiveLimits())
            manifest = _check_manifest(path, zf, members)
            archive = CheckedArchive(zf, manifest, members, [], [])
            _parse_chats(archive)
            _parse_personas(archive)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
            raise _damaged(path, exc) from exc
        yield archive


def _place(target: Path, write: Any, same: Any) -> str:
    """Write a new file via ``write(tmp_path)``: "added", or "same"/"kept" when ``target`` exists."""
    if target.exists():
        return "same" if same(target) else "kept"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".importing")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return "added"


def _place_bytes(target: Path, data: bytes) -> str:
    return _place(target, lambda tmp: tmp.write_bytes(data), lambda t: t.read_bytes() == data)


def _place_model(archive: CheckedArchive, name: str, target: Path) -> str:
    info = archive.members[name][0]

    def write(tmp: Path) -> None:
        with tmp.open("wb") as out:
            _read_bounded(archive.zf, info, out)

    def same(existing: Path) -> bool:
        expected = archive.manifest["files"][name]["sha256"]
        return existing.stat().st_size == info.file_size and _file_sha256(existing) == expected

    return _place(target, write, same)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _merge_json(archive: CheckedArchive, name: str, target: Path, remap: dict[str, str]) -> tuple[str, str]:
    """Add the archive's entries missing from ``target`` (a JSON object); yours are kept.

    Returns the outcome and how to name it in the report.
    """
    try:
        incoming = json.loads(archive.read(name).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ArchiveProblem(f"the archive's {name} is not JSON ({exc})") from exc
    if not isinstance(incoming, dict):
        raise ArchiveProblem(f"the archive's {name} is not a JSON object")
    incoming = {remap.get(key, key): value for key, value in incoming.items()}
    if not target.exists():
        write_json_atomic(target, incoming, ensure_ascii=False)
        return "added", name
    try:
        mine = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        mine = None  # unreadable here: left alone rather than replaced
    if not isinstance(mine, dict):
        return "kept", name
    missing = {key: value for key, value in incoming.items() if key not in mine}
    differ = sum(1 for key, value in incoming.items() if key in mine and mine[key] != value)
    if not missing:
        return ("kept", f"{name} ({_entries(differ)} of yours)") if differ else ("same", name)
    write_json_atomic(target, {**mine, **missing}, ensure_ascii=False)
    kept = f", {_entries(differ)} of yours kept" if differ else ""
    return "added", f"{name} (merged: {_entries(len(missing))} added{kept})"


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def _model_key_remap(manifest: dict[str, Any], models_path: Path) -> dict[str, str]:
    """model-settings.json keys under the exporting models dir, moved to ours (when models came along)."""
    old = manifest.get("models_dir")
    if not isinstance(old, str) or not manifest.get("counts", {}).get("model_files_copied"):
        return {}
    new = models_path.expanduser().resolve()
    remap = {}
    for model in manifest.get("models", []):
        path = model.get("path") if isinstance(model, dict) else None
        if isinstance(path, str) and path.startswith(old.rstrip("/\\") + os.sep):
            remap[path] = str(new / Path(path).relative_to(old))
    return remap


def _needed_bytes(archive: CheckedArchive, options: ImportOptions) -> int:
    return sum(
        info.file_size for info, member in archive.members.values()
        if options.server_files or member.kind not in ("settings", "model")
    )


def _import_files(archive: CheckedArchive, target: DataDir, options: ImportOptions, report: ImportReport) -> None:
    remap = _model_key_remap(archive.manifest, target.models_path)
    for name, (_info, member) in sorted(archive.members.items()):
        if member.kind in ("settings", "model") and not options.server_files:
            report.skipped.append(name)
            continue
        label = name
        if member.kind in ("library", "lora"):
            outcome = _place_bytes(target.path / member.path, archive.read(name))
        elif member.kind == "settings" and name.endswith(".json"):
            outcome, label = _merge_json(
                archive, name, target.path / name, remap if name == "model-settings.json" else {}
            )
        elif member.kind == "settings":
            outcome = _place_bytes(target.path / name, archive.read(name))
        elif member.kind == "model":
            outcome = _place_model(archive, name, target.models_path / member.path)
        else:
            continue
        {"added": report.added, "same": report.same, "kept": report.kept}[outcome].append(label)


def _user_id(target: DataDir, owner: str | None, report: ImportReport) -> int | None:
    if owner is None:
        return None
    report.owners.add(owner)
    return target.chats.ensure_user(owner)


def _import_personas(archive: CheckedArchive, target: DataDir, options: ImportOptions, report: ImportReport) -> None:
    for entry in archive.personas:
        owner = entry.get("owner") if options.keep_owners else options.owner
        user_id = _user_id(target, owner, report)
        avatar = archive.read(entry["avatar"]) if entry.get("avatar") else None
        name, description = entry["name"].strip(), str(entry.get("description") or "")
        existing = target.personas.get(name, user_id)
        if existing is not None:
            label = f"persona {name!r}" + (f" of {owner}" if owner else "")
            same = existing.description == description and existing.avatar == avatar
            (report.same if same else report.kept).append(label)
            continue
        target.personas.save(name, description, avatar, user_id)
        report.personas += 1


def import_archive(
    path: Path, target: DataDir, options: ImportOptions | None = None, limits: ArchiveLimits | None = None
) -> ImportReport:
    """Check ``path`` completely, then import it into ``target`` (see the module docstring)."""
    options = options or ImportOptions()
    report = ImportReport()
    with open_archive(path, limits) as archive:
        free = shutil.disk_usage(target.path).free
        needed = _needed_bytes(archive, options)
        if needed > free:
            raise ArchiveProblem(
                f"Importing {Path(path).name} needs about {needed // 2**20} MiB, but only {free // 2**20} MiB "
                f"are free in {target.path}; nothing was imported."
            )
        try:
            _import_files(archive, target, options, report)
            _import_personas(archive, target, options, report)
        except OSError as exc:
            raise ArchiveProblem(f"Cannot write into {target.path}: {exc.strerror or exc}") from exc
        except zipfile.BadZipFile as exc:  # changed on disk since it was checked
            raise ArchiveProblem(f"{Path(path).name} became unreadable while importing ({exc})") from exc
        for chat in archive.chats:
            owner = chat["owner"] if options.keep_owners else options.owner
            target.chats.import_conversation(chat, _user_id(target, owner, report), keep_dates=True)
            report.chats += 1
    return report


__all__ = ["CheckedArchive", "ImportOptions", "ImportReport", "import_archive", "open_archive"]
