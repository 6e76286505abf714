"""Read, discover, export and save character files.

Formats read by :func:`load_character` (all parsed into :class:`Character`):

- Oobabooga YAML/JSON: ``name``, ``greeting`` (-> first_mes), ``context`` (-> description), and the
  legacy Pygmalion keys ``char_name``, ``char_persona`` (-> description, or personality when a
  description is already given), ``char_greeting``, ``world_scenario``, ``example_dialogue``.
- TavernAI V1 JSON: flat ``name``/``description``/``personality``/``scenario``/``first_mes``/...
- Character Card V2 / V3 (``spec`` = ``chara_card_v2`` / ``chara_card_v3``, fields under ``data``),
  as JSON or YAML, or base64 JSON in a PNG text chunk ``chara`` (V2) / ``ccv3`` (V3). When a PNG
  holds both, ``ccv3`` wins (as in SillyTavern).

Flat files may also use any Character (V2/V3) field name directly. Keys no format defines are kept
in ``Character.extra_fields`` and written back into ``data`` on export. In a V2/V3 card ``data`` is
authoritative; the V1 mirror keys SillyTavern also writes at the top level are ignored.

A card PNG's picture is kept as ``avatar_png`` with its card chunks stripped, so export followed by
import gives back the same bytes. A ``.yaml``/``.yml``/``.json`` file takes ``<stem>.png`` beside it
as its avatar (Oobabooga's convention); :func:`discover_characters` then treats that PNG as a picture.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Literal, NamedTuple

import yaml
from pydantic import ValidationError

from webui.bounded_parse import load_json, load_yaml
from webui.chat.card_png import (
    add_chunks_before_end,
    as_png,
    placeholder_png,
    read_card_png,
    strip_card_chunks,
    text_chunk,
)
from webui.chat.character import Character, Lorebook, LorebookEntry
from webui.errors import CharacterError
from webui.storage.failures import file_disk_full, is_disk_full

log = logging.getLogger(__name__)
CHARACTER_SUFFIXES = (".yaml", ".yml", ".json", ".png")
TEXT_SUFFIXES = (".yaml", ".yml", ".json")
CardSpec = Literal["v2", "v3"]
SPEC_NAMES = {"chara_card_v2": "v2", "chara_card_v3": "v3"}

_STR_FIELDS = (
    "name", "description", "personality", "scenario", "first_mes", "mes_example", "system_prompt",
    "post_history_instructions", "creator_notes", "creator", "character_version", "nickname",
)
_LIST_FIELDS = ("alternate_greetings", "tags", "group_only_greetings", "source")
_CARD_FIELDS = frozenset(Character.model_fields) - {"avatar_png", "source_path", "extra_fields"}
# Legacy flat keys, in priority order: the first one present fills an empty target field.
_FLAT_ALIASES = (
    ("char_name", "name"),
    ("greeting", "first_mes"),
    ("char_greeting", "first_mes"),
    ("context", "description"),
    ("char_persona", "description"),
    ("world_scenario", "scenario"),
    ("example_dialogue", "mes_example"),
    ("creatorcomment", "creator_notes"),
)
_V2_DATA_FIELDS = (
    "name", "description", "personality", "scenario", "first_mes", "mes_example", "creator_notes",
    "system_prompt", "post_history_instructions", "alternate_greetings", "tags", "creator",
    "character_version", "extensions",
)
_V3_OPTIONAL_FIELDS = (
    "nickname", "creator_notes_multilingual", "source", "creation_date", "modification_date", "assets",
)
_V1_MIRROR_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
_ENTRY_OPTIONAL_FIELDS = ("case_sensitive", "priority", "id")


# --------------------------------------------------------------------------------------- loading


def load_character(path: Path) -> Character:
    """Parse one character file (.yaml, .yml, .json or .png); raise CharacterError if it cannot be."""
    path = Path(path)
    if not path.is_file():
        raise CharacterError(f"Character file {path} does not exist (or is not a file).")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CharacterError(f"Cannot read character file {path}: {exc.strerror or exc}") from exc
    avatar = _sibling_avatar(path) if path.suffix.lower() in TEXT_SUFFIXES else None
    character = load_character_bytes(data, str(path), avatar_png=avatar)
    return character.model_copy(update={"source_path": str(path)})


def load_character_bytes(data: bytes, filename: str, *, avatar_png: bytes | None = None) -> Character:
    """Parse an uploaded character file; ``filename`` picks the format and names it in errors."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".png":
        raw, avatar_png = read_card_png(data, filename)
    elif suffix in TEXT_SUFFIXES:
        raw = _parse_text(data, suffix, filename)
    else:
        raise CharacterError(
            f"{filename}: unsupported character file type '{suffix or '(none)'}'; "
            "use a .yaml, .yml, .json or .png (Tavern card) file."
        )
    return character_from_dict(raw, filename, avatar_png=avatar_png)


def character_from_dict(raw: Any, label: str = "character", *, avatar_png: bytes | None = None) -> Character:
    """Build a Character from an already-parsed file (flat Oobabooga/Pygmalion/V1 or a V2/V3 card)."""
    if not isinstance(raw, dict):
        raise CharacterError(
            f"{label} does not hold a character: expected a mapping of fields, found {_kind(raw)}."
        )
    spec = raw.get("spec")
    if spec is not None:
        if not isinstance(spec, str) or spec not in SPEC_NAMES:
            raise CharacterError(
                f"{label}: unsupported card spec {_short(spec)}; expected 'chara_card_v2' or 'chara_card_v3'."
            )
        data = raw.get("data")
        if not isinstance(data, dict):
            raise CharacterError(f"{label}: a {spec} card needs a 'data' object with its fields.")
        fields = {k: v for k, v in data.items() if k in _CARD_FIELDS}
        extra = {k: v for k, v in data.items() if k not in _CARD_FIELDS}
    else:
        fields, extra = _from_flat(raw)
    odd = _non_json_value({**fields, **extra})
    if odd:
        raise CharacterError(
            f"{label}: the field '{odd[0]}' holds {odd[1]}, which a card cannot store; "
            "card fields hold text, numbers, true/false, lists and mappings."
        )
    fields = _normalize(fields)
    name = fields.get("name")
    if not isinstance(name, str) or not name.strip():
        where = "in its 'data'" if spec else "('name' or 'char_name')"
        raise CharacterError(f"{label} has no character name {where}; a character needs a name.")
    fields["name"] = name.strip()
    try:
        return Character(**fields, extra_fields=extra, avatar_png=avatar_png)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}" for err in exc.errors()[:3]
        )
        raise CharacterError(f"{label} has fields of the wrong type ({problems}).") from exc


class SkippedFile(NamedTuple):
    """A character file (or folder) discovery could not use, and why."""

    path: Path
    reason: str


def discover_characters(dirs: list[Path]) -> tuple[dict[str, Character], list[SkippedFile]]:
    """Load every character file in ``dirs`` (not recursive).

    Returns characters by name and the files skipped, each with the reason; a bad file never stops
    the others, whatever its parser raised. Missing directories are skipped. A later directory
    overrides an earlier one for the same name (so the data dir can override the repo's
    ``characters/``); within one directory the first file in name order wins and the duplicate is
    reported.
    """
    found: dict[str, Character] = {}
    skipped: list[SkippedFile] = []
    for directory in map(Path, dirs):
        try:
            files = _character_files(directory) if directory.is_dir() else []
        except OSError as exc:
            skipped.append(SkippedFile(directory, f"cannot list the folder: {exc.strerror or exc}"))
            continue
        in_dir: dict[str, Path] = {}
        for path in files:
            try:
                character = load_character(path)
            except CharacterError as exc:
                skipped.append(SkippedFile(path, str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - a parser bug must not stop start-up: skip the file
                log.debug("reading %s failed", path, exc_info=True)
                skipped.append(SkippedFile(path, f"{path.name} could not be read ({type(exc).__name__}: {exc})"))
                continue
            if character.name in in_dir:
                first = in_dir[character.name]
                skipped.append(SkippedFile(
                    path, f"{path} and {first.name} both define the character '{character.name}'; using {first.name}."))
                continue
            in_dir[character.name] = path
            found[character.name] = character
    return found, skipped


def _character_files(directory: Path) -> list[Path]:
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    texts = {p.stem for p in files if p.suffix.lower() in TEXT_SUFFIXES}
    return [
        p
        for p in files
        if p.suffix.lower() in CHARACTER_SUFFIXES
        and not (p.suffix.lower() == ".png" and p.stem in texts)  # that PNG is an avatar
    ]


def _parse_text(data: bytes, suffix: str, label: str) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CharacterError(f"{label} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
    try:
        return load_json(text) if suffix == ".json" else load_yaml(text)
    except json.JSONDecodeError as exc:
        raise CharacterError(
            f"{label} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from exc
    except yaml.YAMLError as exc:
        raise CharacterError(f"{label} is not valid YAML: {exc}") from exc


def _from_flat(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Map a flat Oobabooga/Pygmalion/TavernAI V1 dict to (Character fields, unknown keys)."""
    fields = {k: v for k, v in raw.items() if k in _CARD_FIELDS}
    consumed: set[str] = set()
    for alias, target in _FLAT_ALIASES:
        if alias not in raw:
            continue
        if _is_blank(fields.get(target)):
            fields[target] = raw[alias]
            consumed.add(alias)
        elif alias == "char_persona" and _is_blank(fields.get("personality")):
            fields["personality"] = raw[alias]
            consumed.add(alias)
    extra = {k: v for k, v in raw.items() if k not in _CARD_FIELDS and k not in consumed}
    return fields, extra


def _normalize(fields: dict[str, Any]) -> dict[str, Any]:
    """Tolerate what real cards contain: nulls, numbers for strings, a single string for a list."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue  # null means "not set": use the default
        if key in _STR_FIELDS and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        elif key in _LIST_FIELDS:
            value = _str_list(value, split=key == "tags")
        elif key == "character_book" and isinstance(value, dict):
            value = _normalize_book(value)
        out[key] = value
    return out


def _normalize_book(book: dict[str, Any]) -> dict[str, Any]:
    book = {k: v for k, v in book.items() if v is not None}
    entries = book.get("entries", [])
    if isinstance(entries, list):
        book["entries"] = [_normalize_entry(e) if isinstance(e, dict) else e for e in entries]
    return book


def _normalize_entry(entry: dict[str, Any]) -> dict[str, Any]:
    entry = dict(entry)
    for key in ("keys", "secondary_keys"):
        if key in entry:
            entry[key] = _str_list(entry[key], split=True)
    for key in ("content", "name", "comment"):
        if entry.get(key, "") is None:
            del entry[key]
    for key in ("extensions", "enabled", "insertion_order", "selective", "constant", "position", "use_regex"):
        if key in entry and entry[key] is None:
            del entry[key]
    return entry


def _str_list(value: Any, *, split: bool) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        parts = value.split(",") if split else [value]
        return [p.strip() for p in parts if p.strip()] if split else parts
    if isinstance(value, list):
        return [str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in value]
    return value  # let validation name the problem


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


_JSON_SCALARS = (str, int, float, bool, type(None))


def _non_json_value(fields: dict[str, Any]) -> tuple[str, str] | None:
    """(path, what) of the first value JSON cannot hold: YAML gives dates, ``!!binary`` bytes and
    ``!!set`` sets, which would fail only later, when the card is exported or saved."""
    stack: list[tuple[str, Any]] = [(str(k), v) for k, v in reversed(fields.items())]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in reversed(value.items()):
                if not isinstance(key, _JSON_SCALARS):
                    return f"{path}.{key!r}", f"a key of type {type(key).__name__}"
                stack.append((f"{path}.{key}", item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))
        elif not isinstance(value, _JSON_SCALARS):
            what = {"bytes": "binary data (!!binary)", "set": "a set (!!set)", "date": "a date",
                    "datetime": "a date and time"}.get(type(value).__name__, f"a {type(value).__name__}")
            return path, what
    return None


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for naming a bad value in a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value: Any) -> str:
    return "nothing (empty file)" if value is None else f"a {type(value).__name__}"


def _sibling_avatar(path: Path) -> bytes | None:
    """``<stem>.png`` beside a text character file, card chunks stripped; None if absent or broken."""
    picture = path.with_suffix(".png")
    try:
        return strip_card_chunks(picture.read_bytes()) if picture.is_file() else None
    except (OSError, CharacterError):
        return None


# ---------------------------------------------------------------------------------------- export


def export_card_json(character: Character, spec: CardSpec = "v2") -> dict[str, Any]:
    """The character as a Character Card V2 or V3 dict (JSON-ready).

    V2 has no place for the V3-only fields (nickname, group_only_greetings, assets, ...); use V3
    to keep them. ``extra_fields`` go back into ``data``. A V2 card also carries the V1 mirror
    fields at its top level, as SillyTavern writes them, for V1-only readers.
    """
    if spec not in ("v2", "v3"):
        raise ValueError(f"spec must be 'v2' or 'v3', not {spec!r}")
    dumped = character.model_dump(mode="json")
    data: dict[str, Any] = {k: v for k, v in dumped["extra_fields"].items() if k not in _CARD_FIELDS}
    data.update({k: dumped[k] for k in _V2_DATA_FIELDS})
    if character.character_book is not None:
        data["character_book"] = _book_to_dict(character.character_book, spec)
    if spec == "v2":
        card: dict[str, Any] = {k: dumped[k] for k in _V1_MIRROR_FIELDS}
        card.update({"spec": "chara_card_v2", "spec_version": "2.0", "data": data})
        return card
    data["group_only_greetings"] = dumped["group_only_greetings"]
    for key in _V3_OPTIONAL_FIELDS:
        if dumped[key] not in (None, ""):
            data[key] = dumped[key]
    return {"spec": "chara_card_v3", "spec_version": "3.0", "data": data}


def _book_to_dict(book: Lorebook, spec: CardSpec) -> dict[str, Any]:
    out = book.model_dump(mode="json", exclude={"entries"})
    for key in ("scan_depth", "token_budget"):
        if out.get(key) is None:
            out.pop(key, None)
    out["entries"] = [_entry_to_dict(entry, spec) for entry in book.entries]
    return out


def _entry_to_dict(entry: LorebookEntry, spec: CardSpec) -> dict[str, Any]:
    out = entry.model_dump(mode="json")
    for key in _ENTRY_OPTIONAL_FIELDS:
        if out.get(key) is None:
            out.pop(key, None)
    if spec == "v2" and not entry.use_regex:
        out.pop("use_regex", None)  # a V3 field; V2 readers would not know it
    return out


def _encode_card(card: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(card, ensure_ascii=False).encode("utf-8")).decode("ascii")


def export_card_png(character: Character, spec: CardSpec = "v2", avatar: bytes | None = None) -> bytes:
    """A Tavern card PNG: the picture (``avatar``, else ``character.avatar_png``, else a plain
    image) with a ``chara`` chunk (V2 JSON) and, for ``spec="v3"``, also a ``ccv3`` chunk (V3 JSON).
    """
    chunks = [text_chunk("chara", _encode_card(export_card_json(character, "v2")))]
    if spec == "v3":
        chunks.append(text_chunk("ccv3", _encode_card(export_card_json(character, "v3"))))
    elif spec != "v2":
        raise ValueError(f"spec must be 'v2' or 'v3', not {spec!r}")
    picture = avatar if avatar is not None else character.avatar_png
    png = strip_card_chunks(as_png(picture) if picture else placeholder_png())
    return add_chunks_before_end(png, chunks)


def save_character_yaml(character: Character, path: Path) -> None:
    """Store a character as an editable YAML holding a V3 card (every field; the loader reads it back).

    The avatar, if any, is written beside it as ``<stem>.png`` (where the loader looks for it).
    An existing ``<stem>.png`` is left alone when the character has no avatar.
    """
    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise CharacterError(f"Cannot save character to {path}: the file name must end in .yaml or .yml.")
    text = yaml.dump(
        export_card_json(character, "v3"),
        Dumper=_literal_dumper(),
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, text.encode("utf-8"))
        if character.avatar_png:
            _atomic_write(path.with_suffix(".png"), strip_card_chunks(as_png(character.avatar_png)))
    except OSError as exc:
        if is_disk_full(exc):
            raise file_disk_full(exc, path) from exc
        raise CharacterError(f"Cannot save character to {path}: {exc.strerror or exc}") from exc


def _literal_dumper() -> type[yaml.SafeDumper]:
    """A SafeDumper writing multi-line strings as ``|`` blocks (PyYAML falls back to quotes when
    a block cannot hold the string exactly)."""

    class LiteralDumper(yaml.SafeDumper):
        pass

    def represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    LiteralDumper.add_representer(str, represent_str)
    return LiteralDumper


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
