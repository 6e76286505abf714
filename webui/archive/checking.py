"""Open an archive and check it completely before anything is written (``webui.archive.restore``
imports what passed): every member's name (``layout.classify``), declared size and compression ratio
(zip-bomb guards), its size and sha256 against the manifest (whose shape is validated), every chat
and the persona list parsed, and the Notebook prompts. Chats are parsed one at a time, so memory
holds one chat, never all of the archive's."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError

from webui.archive.layout import (
    ARCHIVE_FORMAT,
    ARCHIVE_VERSION,
    MANIFEST,
    NOTEBOOK_FILE,
    ArchiveLimits,
    ArchiveProblem,
    Member,
    check_entry,
    check_size,
    classify,
)
from webui.archive.notebook import parse_prompts
from webui.chat.transfer import ImportProblem, parse_chat_file

CHUNK = 1024 * 1024
MAX_MANIFEST_BYTES = 16 * 2**20


class _FileEntry(BaseModel):
    size: StrictInt
    sha256: StrictStr


class Manifest(BaseModel):
    """The manifest fields an import reads, with the types it relies on (others are allowed)."""

    model_config = ConfigDict(extra="allow")

    format: StrictStr
    version: StrictInt
    files: dict[str, _FileEntry]
    counts: dict[str, StrictInt] = {}
    models_dir: StrictStr | None = None
    models: list[dict[str, Any]] = []


@dataclass
class CheckedArchive:
    """An archive that passed every check: its manifest, members, chat member names and personas."""

    zf: zipfile.ZipFile
    manifest: Manifest
    members: dict[str, tuple[zipfile.ZipInfo, Member]]
    chat_names: list[str]
    personas: list[dict[str, Any]]
    notebook: list[dict[str, Any]] = field(default_factory=list)  # the saved prompts, checked

    def read(self, name: str) -> bytes:
        info, _member = self.members[name]
        return read_bounded(self.zf, info)

    def chats(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(member name, chat with its "owner")``, parsed one at a time (never all held at once)."""
        for name in self.chat_names:
            yield name, _parse_chat(name, self.read(name))


def _damaged(path: Path, why: object) -> ArchiveProblem:
    return ArchiveProblem(f"{path.name} is not a zip archive or is damaged ({why}); nothing was imported.")


def read_bounded(zf: zipfile.ZipFile, info: zipfile.ZipInfo, sink: BinaryIO | None = None) -> bytes:
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
            f"{limits.max_content_bytes // 2**20} MiB allowed from {limits.where}; refused"
        )
    return members


def _check_manifest(
    path: Path, zf: zipfile.ZipFile, members: dict[str, tuple[zipfile.ZipInfo, Member]]
) -> Manifest:
    foreign = ArchiveProblem(f"{path.name} is not an archive exported by this app (no {ARCHIVE_FORMAT} manifest).")
    if MANIFEST not in members:
        raise foreign
    info = members[MANIFEST][0]
    if info.file_size > MAX_MANIFEST_BYTES:
        raise ArchiveProblem(f"{path.name}: its manifest is implausibly large; refused")
    try:
        manifest = json.loads(read_bounded(zf, info).decode("utf-8"))
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
    if not isinstance(manifest.get("files"), dict):
        raise _damaged(path, "its manifest has no file list")
    try:
        checked = Manifest.model_validate(manifest)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise _damaged(path, f"its manifest's {where} is malformed: {first['msg']}") from exc
    files = checked.files
    listed, present = set(files), set(members) - {MANIFEST}
    if listed != present:
        extra = sorted(present - listed)
        what = f"{extra[0]!r} is not in its manifest" if extra else f"{sorted(listed - present)[0]!r} is missing"
        raise _damaged(path, what)
    for name in sorted(present):
        info = members[name][0]
        expected = files[name]
        if info.file_size != expected.size:
            raise _damaged(path, f"{name!r} has another size than its manifest says")
        if _sha256(zf, info) != expected.sha256:
            raise _damaged(path, f"{name!r} does not match its checksum")
    return checked


def _parse_chat(name: str, raw: bytes) -> dict[str, Any]:
    """One chat member as ``import_conversation`` takes it, plus its "owner"; raises ArchiveProblem."""
    try:
        chat = parse_chat_file(raw, name)
        owner = json.loads(raw.decode("utf-8-sig")).get("owner")
    except (ImportProblem, ValueError, AttributeError) as exc:
        raise ArchiveProblem(f"the archive's {name} is not a chat ({exc})") from exc
    if owner is not None and not (isinstance(owner, str) and owner.strip()):
        raise ArchiveProblem(f"the archive's {name} names no valid owner")
    return {**chat, "owner": owner}


def _check_chats(archive: CheckedArchive) -> None:
    """Parse every chat once, keeping none (the import parses each again as it writes it)."""
    for name in archive.chat_names:
        try:
            _parse_chat(name, archive.read(name))
        except ArchiveProblem as exc:
            raise ArchiveProblem(f"{exc}; nothing was imported") from exc


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
            chat_names = sorted(n for n, (_i, m) in members.items() if m.kind == "chat")
            archive = CheckedArchive(zf, manifest, members, chat_names, [])
            _check_chats(archive)
            _parse_personas(archive)
            if NOTEBOOK_FILE in members:
                archive.notebook = parse_prompts(archive.read(NOTEBOOK_FILE))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
            raise _damaged(path, exc) from exc
        yield archive
