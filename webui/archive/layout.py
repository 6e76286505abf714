"""What an archive holds, how its members are named, and the limits an import enforces.

An archive is a zip whose member names mirror the data dir::

    manifest.json                  format, version, app version, date, counts, models, every file's size + sha256
    chats/000001.json              one chat each, the chat export format (every message version) + "owner"
    personas.json                  [{"owner", "name", "description", "avatar"}]; avatars as personas/000001.png
    notebook.json                  the Notebook's saved prompts: [{"owner", "name", "text", "updated_at"}]
                                   (format version 2; a version 1 archive has none)
    characters/NAME.yaml|.png|...  <data-dir>/characters, as they are
    presets/NAME.yaml              <data-dir>/presets
    instruction-templates/NAME.jinja|.yaml
    loras/NAME/*.json              LoRA adapters' metadata (not their weights)
    settings.yaml, model-settings.json, extensions.json
    models/...                     only with --include-models: the models dir's files

Any other name, a name with ``..``, an absolute or hidden path, a link or an encrypted member makes
the whole archive refused (``classify``).
"""

from __future__ import annotations

import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from webui.errors import UserFacingError

ARCHIVE_FORMAT = "webui-archive"
ARCHIVE_VERSION = 2  # 2: notebook.json (an older app refuses it as "made by a newer version")
MANIFEST = "manifest.json"
CHATS_DIR = "chats"
PERSONAS_FILE = "personas.json"
PERSONA_AVATARS_DIR = "personas"
NOTEBOOK_FILE = "notebook.json"
MODELS_DIR = "models"
LORAS_DIR = "loras"
# data-dir folders copied file by file (not recursive), with the suffixes each may hold
LIBRARY_DIRS: dict[str, tuple[str, ...]] = {
    "characters": (".yaml", ".yml", ".json", ".png"),
    "presets": (".yaml", ".yml"),
    "instruction-templates": (".jinja", ".yaml", ".yml"),
}
SETTINGS_YAML = "settings.yaml"
JSON_SETTINGS = ("model-settings.json", "extensions.json")  # app-written maps, merged entry by entry
SETTINGS_FILES = (SETTINGS_YAML, *JSON_SETTINGS)
# settings.yaml keys never exported: secrets, and where this install keeps its chats and passwords
SERVER_ONLY_SETTINGS: dict[str, str] = {
    "auth": "account passwords",
    "api_keys": "API keys",
    "auth_file": "the path of a password file",
    "database_url": "where this install stores its chats",
}
# settings.yaml keys an import writes (when the target has no settings.yaml): preferences that decide
# nothing about who can connect, where chats are stored or sent, which model or code runs, or the
# server's limits. Every other key (and any key added later) is left out and named in the report.
IMPORTABLE_SETTINGS = frozenset({
    "user_name", "port",
    # how the chosen model is loaded (not which one, nor trust_remote_code)
    "load_in_8bit", "load_in_4bit", "quantization", "use_mmap", "dtype", "quant_type", "compute_dtype",
    "use_double_quant", "device_map", "attn_implementation", "compile", "n_gpu_layers", "n_ctx", "threads",
    "n_batch", "flash_attn", "cache_type", "use_mlock", "tensor_split",
})

Kind = Literal["manifest", "chat", "personas", "persona_avatar", "notebook", "library", "lora", "settings", "model"]
_CHAT = re.compile(r"^\d{1,9}\.json$")
_AVATAR = re.compile(r"^\d{1,9}\.png$")
_BAD_CHARS = re.compile(r'[\x00-\x1f\\:*?"<>|]')


class ArchiveProblem(UserFacingError):
    """An archive cannot be written, or is not one this app can import (damaged, foreign, unsafe)."""


@dataclass(frozen=True)
class ArchiveLimits:
    """What an import accepts before it reads a member's content (zip-bomb guards).

    Sizes are the uncompressed sizes the zip declares; reading never goes past them. Models (only
    in an archive made with --include-models) are bounded by the free disk space instead. These
    defaults are the command line's (the operator importing their own backup); an archive uploaded
    through the web page gets the much smaller ``WEB_LIMITS``.
    """

    max_members: int = 100_000
    max_member_bytes: int = 256 * 2**20
    max_content_bytes: int = 1024 * 2**20  # everything but models, together
    max_ratio: int = 200  # uncompressed / compressed, for members larger than ratio_floor
    ratio_floor: int = 2**20  # smaller members are exempt (a short JSON file packs far better than 200:1)
    where: str = "python app.py import"  # named in the refusal, with the limit that applied


# An archive uploaded through the web page: anyone who can open the page can send one, so what it
# may unpack to (and insert into the database) is kept small; larger backups go through the CLI.
WEB_LIMITS = ArchiveLimits(
    max_members=20_000, max_member_bytes=32 * 2**20, max_content_bytes=64 * 2**20, where="the web page",
)


@dataclass(frozen=True)
class Member:
    """What one member name means: its kind, and for files where it goes (relative to the data dir,
    or to the models dir for a model)."""

    kind: Kind
    path: PurePosixPath


def safe_part(part: str) -> bool:
    """A file or folder name that stays where it is put: no separators, no ``..``, not hidden."""
    return bool(part) and len(part) <= 255 and not part.startswith(".") and not _BAD_CHARS.search(part)


def classify(name: str) -> Member:
    """The meaning of an archive member name; raises ArchiveProblem for any name we would not write."""
    path = PurePosixPath(name)
    parts = name.split("/")
    if name.startswith("/") or not all(safe_part(p) for p in parts):
        raise ArchiveProblem(f"the archive holds an unsafe member name {name!r} (refused: nothing was imported)")
    top, rest = parts[0], parts[1:]
    if name == MANIFEST:
        return Member("manifest", path)
    if name == PERSONAS_FILE:
        return Member("personas", path)
    if name == NOTEBOOK_FILE:
        return Member("notebook", path)
    if name in SETTINGS_FILES:
        return Member("settings", path)
    if top == CHATS_DIR and len(rest) == 1 and _CHAT.match(rest[0]):
        return Member("chat", path)
    if top == PERSONA_AVATARS_DIR and len(rest) == 1 and _AVATAR.match(rest[0]):
        return Member("persona_avatar", path)
    if top in LIBRARY_DIRS and len(rest) == 1 and path.suffix.lower() in LIBRARY_DIRS[top]:
        return Member("library", path)
    if top == LORAS_DIR and len(rest) == 2 and path.suffix.lower() == ".json":
        return Member("lora", path)
    if top == MODELS_DIR and rest:
        return Member("model", PurePosixPath(*rest))
    raise ArchiveProblem(f"the archive holds {name!r}, which is not part of an export of this app")


def check_entry(info: zipfile.ZipInfo) -> None:
    """Refuse links, folders and encrypted members (an archive of ours holds plain files only)."""
    mode = info.external_attr >> 16
    if info.is_dir() or stat.S_IFMT(mode) not in (0, stat.S_IFREG):
        raise ArchiveProblem(f"the archive member {info.filename!r} is not a plain file (a link or folder); refused")
    if info.flag_bits & 0x1:
        raise ArchiveProblem(f"the archive member {info.filename!r} is encrypted; refused")


def check_size(info: zipfile.ZipInfo, member: Member, limits: ArchiveLimits) -> None:
    """Refuse a member whose declared size or compression ratio no export of ours would have."""
    if member.kind == "model":
        return
    if info.file_size > limits.max_member_bytes:
        raise ArchiveProblem(
            f"the archive member {info.filename!r} would unpack to {info.file_size // 2**20} MiB, "
            f"more than the {limits.max_member_bytes // 2**20} MiB allowed from {limits.where}; refused"
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > limits.ratio_floor and ratio > limits.max_ratio:
        raise ArchiveProblem(
            f"the archive member {info.filename!r} unpacks {ratio:.0f} times its packed size "
            "(a zip bomb?); refused"
        )
