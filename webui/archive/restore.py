"""Import a checked archive into a data dir without overwriting anything there.

Nothing is written until the whole archive has passed ``webui.archive.checking.open_archive``.
Then, for what is already there:

- chats are always added (importing one archive twice adds its chats twice), one database
  transaction each (a long single transaction would lock a running server's database for the whole
  import). Should one fail, the error names how many and which were imported, so that a re-run,
  which would add those again, is not done blindly;
- a persona whose name the owner already uses is kept, the imported one skipped; so is a Notebook
  prompt (``webui.archive.notebook``; an archive without prompts, from before the Notebook, imports too);
- a file (character, avatar, preset, template, LoRA metadata, settings.yaml, model file) that
  exists is kept and the imported one skipped (identical ones are counted as "already there");
  it is linked into place, so a file created meanwhile is not overwritten either;
- settings.yaml keeps only harmless keys (``layout.IMPORTABLE_SETTINGS``); every other key
  (database_url, listen, host, auth_file, model, trust_remote_code...) is left out and named;
- model-settings.json and extensions.json are merged entry by entry: entries you have are kept;
  an imported model entry never brings ``trust_remote_code``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from webui.archive.checking import CHUNK, CheckedArchive, Manifest, open_archive, read_bounded
from webui.archive.data import DataDir, imported_model_settings, imported_settings_yaml
from webui.archive.layout import (
    NOTEBOOK_FILE,
    SETTINGS_FILES,
    SETTINGS_YAML,
    ArchiveLimits,
    ArchiveProblem,
    Member,
)
from webui.archive.notebook import import_prompts
from webui.atomic_file import write_json_atomic

_NO_LINKS = {errno.EPERM, errno.EACCES, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


@dataclass(frozen=True)
class ImportOptions:
    """``owner``: put every chat and persona in this account (None: the anonymous history) instead
    of the accounts they were exported from (``keep_owners``). ``server_files``: also import
    model-settings.json and extensions.json, and (each when its own option allows) settings.yaml
    and model files. The web page never imports settings.yaml nor models."""

    keep_owners: bool = True
    owner: str | None = None
    server_files: bool = True
    settings_yaml: bool = True
    models: bool = True

    def takes(self, name: str, member: Member) -> bool:
        """Whether this import writes the member (chats, personas and the library always)."""
        if member.kind == "model":
            return self.server_files and self.models
        if member.kind == "settings":
            return self.server_files and (self.settings_yaml or name != SETTINGS_YAML)
        return True


@dataclass
class ImportReport:
    chats: int = 0
    personas: int = 0
    notebook_prompts: int = 0
    added: list[str] = field(default_factory=list)  # files written
    same: list[str] = field(default_factory=list)  # already there, identical
    kept: list[str] = field(default_factory=list)  # yours kept, the imported one skipped
    skipped: list[str] = field(default_factory=list)  # left out by the options
    refused: list[str] = field(default_factory=list)  # left out as not an archive's to decide
    owners: set[str] = field(default_factory=set)

    def lines(self) -> list[str]:
        """A summary for people, one line each."""
        out = [f"Imported {self.chats} chats and {self.personas} personas; {len(self.added)} files added"
               + (f", {len(self.same)} already there" if self.same else "") + "."]
        if self.notebook_prompts:
            out.append(f"Imported {self.notebook_prompts} saved Notebook prompts.")
        if self.owners:
            out.append("Chats went to the accounts: " + ", ".join(sorted(self.owners)) + ".")
        if self.kept:
            out.append("Kept yours, skipped the imported one: " + ", ".join(self.kept) + ".")
        if self.skipped:
            out.append("Not imported here: " + ", ".join(self.skipped) + ".")
        if self.refused:
            out.append("Left out for safety (set them yourself if you want them): " + ", ".join(self.refused) + ".")
        if any(name.split(" ")[0] in SETTINGS_FILES for name in self.added):
            out.append("Settings take effect when the app is next started.")
        return out


def _place(target: Path, write: Any, same: Any) -> str:
    """Write a new file via ``write(tmp_path)``: "added", or "same"/"kept" when ``target`` exists.

    The finished file is hard-linked to ``target``, which fails when ``target`` exists: a file
    created there after the first look (by the app, another import) is never overwritten. Where the
    file system has no hard links, it is copied into a file opened with O_EXCL instead.
    """
    if target.is_symlink():
        return "kept"  # a link of yours, left alone (and not followed)
    if target.exists():
        return "same" if same(target) else "kept"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".importing")
    os.close(fd)
    try:
        write(Path(tmp))
        try:
            _link_new(Path(tmp), target)
        except FileExistsError:
            return "same" if same(target) else "kept"
    finally:
        Path(tmp).unlink(missing_ok=True)
    return "added"


def _link_new(source: Path, target: Path) -> None:
    """Make ``target`` a new file with ``source``'s content; FileExistsError when it exists."""
    try:
        os.link(source, target)
        return
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
    with source.open("rb") as src, target.open("xb") as out:  # "x": O_CREAT | O_EXCL
        try:
            shutil.copyfileobj(src, out, CHUNK)
        except BaseException:
            out.close()
            target.unlink(missing_ok=True)
            raise


def _place_bytes(target: Path, data: bytes) -> str:
    return _place(target, lambda tmp: tmp.write_bytes(data), lambda t: t.read_bytes() == data)


def _place_model(archive: CheckedArchive, name: str, target: Path) -> str:
    info = archive.members[name][0]

    def write(tmp: Path) -> None:
        with tmp.open("wb") as out:
            read_bounded(archive.zf, info, out)

    def same(existing: Path) -> bool:
        expected = archive.manifest.files[name].sha256
        return existing.stat().st_size == info.file_size and _file_sha256(existing) == expected

    return _place(target, write, same)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _merge_json(
    archive: CheckedArchive, name: str, target: Path, remap: dict[str, str], report: ImportReport
) -> tuple[str, str]:
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
    if name == "model-settings.json":
        incoming, cut = imported_model_settings(incoming)
        if cut:
            report.refused.append(f"model-settings.json: trust_remote_code or API keys ({_entries(cut)})")
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


def _model_key_remap(manifest: Manifest, models_path: Path) -> dict[str, str]:
    """model-settings.json keys under the exporting models dir, moved to ours (when models came along)."""
    old = manifest.models_dir
    if old is None or not manifest.counts.get("model_files_copied"):
        return {}
    new = models_path.expanduser().resolve()
    remap = {}
    for model in manifest.models:
        path = model.get("path") if isinstance(model, dict) else None
        if isinstance(path, str) and path.startswith(old.rstrip("/\\") + os.sep):
            remap[path] = str(new / Path(path).relative_to(old))
    return remap


def _needed_bytes(archive: CheckedArchive, options: ImportOptions) -> int:
    return sum(info.file_size for name, (info, member) in archive.members.items() if options.takes(name, member))


def _import_files(archive: CheckedArchive, target: DataDir, options: ImportOptions, report: ImportReport) -> None:
    remap = _model_key_remap(archive.manifest, target.models_path) if options.models else {}
    models_skipped = 0
    for name, (_info, member) in sorted(archive.members.items()):
        if not options.takes(name, member):
            if member.kind == "model":
                models_skipped += 1
            else:
                report.skipped.append(name)
            continue
        label = name
        if member.kind in ("library", "lora"):
            outcome = _place_bytes(target.path / member.path, archive.read(name))
        elif member.kind == "settings" and name.endswith(".json"):
            outcome, label = _merge_json(
                archive, name, target.path / name, remap if name == "model-settings.json" else {}, report
            )
        elif member.kind == "settings":
            data, refused = imported_settings_yaml(archive.read(name))
            report.refused.extend(refused)
            if data is None:
                continue
            outcome = _place_bytes(target.path / name, data)
        elif member.kind == "model":
            outcome = _place_model(archive, name, target.models_path / member.path)
        else:
            continue
        {"added": report.added, "same": report.same, "kept": report.kept}[outcome].append(label)
    if models_skipped:
        report.skipped.append(f"models/ ({models_skipped} model files)")


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


def _import_notebook(archive: CheckedArchive, target: DataDir, options: ImportOptions, report: ImportReport) -> None:
    if not archive.notebook:
        return
    if target.notebook is None:
        report.skipped.append(NOTEBOOK_FILE)
        return
    added, same, kept = import_prompts(
        archive.notebook, target.notebook, lambda entry: entry.get("owner") if options.keep_owners else options.owner,
        lambda owner: _user_id(target, owner, report))
    report.notebook_prompts += added
    report.same.extend(same)
    report.kept.extend(kept)


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
            _import_notebook(archive, target, options, report)
        except OSError as exc:
            raise ArchiveProblem(f"Cannot write into {target.path}: {exc.strerror or exc}") from exc
        except zipfile.BadZipFile as exc:  # changed on disk since it was checked
            raise ArchiveProblem(f"{Path(path).name} became unreadable while importing ({exc})") from exc
        _import_chats(archive, target, options, report)
    return report


def _import_chats(archive: CheckedArchive, target: DataDir, options: ImportOptions, report: ImportReport) -> None:
    """Each chat parsed, written (one transaction) and let go before the next; a failure names what
    was imported already (a re-run would add those chats again)."""
    imported: list[str] = []
    try:
        for name, chat in archive.chats():
            owner = chat["owner"] if options.keep_owners else options.owner
            target.chats.import_conversation(chat, _user_id(target, owner, report), keep_dates=True)
            report.chats += 1
            imported.append(name)
            del chat
    except (ArchiveProblem, SQLAlchemyError, OSError, zipfile.BadZipFile, EOFError) as exc:
        total = len(archive.chat_names)
        done = (f"{len(imported)} of its {total} chats were imported ({_name_range(imported)}); "
                "importing the archive again would add those again") if imported else "no chat was imported"
        raise ArchiveProblem(
            f"The import stopped: {exc}. Files and personas were imported; {done}."
        ) from exc


def _name_range(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{names[0]} to {names[-1]}"


__all__ = ["CheckedArchive", "ImportOptions", "ImportReport", "import_archive", "open_archive"]
