"""Chat export and import: our JSON (every message version) and Oobabooga's history JSON."""

from __future__ import annotations

import json
from typing import Any

from webui.bounded_parse import load_json
from webui.chat.prompt import MODES
from webui.errors import UserFacingError
from webui.storage.repository import EXPORT_FORMAT

OOBA_VISIBLE_MARKER = "<|BEGIN-VISIBLE-CHAT|>"
MAX_IMPORT_BYTES = 50 * 1024 * 1024


class ImportProblem(UserFacingError):
    """An import file is not a chat we can read."""


def parse_chat_file(data: bytes, filename: str = "chat.json") -> dict[str, Any]:
    """Our export format from either supported file; raises ImportProblem with a clear reason."""
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportProblem(f"{filename} is larger than {MAX_IMPORT_BYTES // 2**20} MB.")
    try:
        raw = load_json(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportProblem(f"{filename} is not a JSON file ({exc}).") from exc
    if isinstance(raw, dict) and raw.get("format") == EXPORT_FORMAT:
        return _check_ours(raw, filename)
    if isinstance(raw, dict) and isinstance(raw.get("internal"), list):
        return _from_oobabooga(raw, filename)
    raise ImportProblem(
        f"{filename} is neither a chat exported from this app nor an Oobabooga history "
        '(a JSON object with "internal": [[user, bot], ...]).'
    )


def _check_ours(raw: dict[str, Any], filename: str) -> dict[str, Any]:
    messages = raw.get("messages")
    if not isinstance(messages, list):
        raise ImportProblem(f'{filename}: "messages" must be a list.')
    clean = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant", "system"):
            raise ImportProblem(f"{filename}: message {i + 1} needs a role of user, assistant or system.")
        versions = m.get("versions")
        if not isinstance(versions, list) or not versions or not all(isinstance(v, str) for v in versions):
            raise ImportProblem(f"{filename}: message {i + 1} needs a non-empty list of text versions.")
        active = m.get("active_version", len(versions) - 1)
        if not isinstance(active, int) or not 0 <= active < len(versions):
            active = len(versions) - 1
        clean.append({"role": m["role"], "versions": versions, "active_version": active})
    settings = _clean_settings(raw.get("settings"))
    dates = {key: raw[key] for key in ("created_at", "updated_at") if isinstance(raw.get(key), str)}
    return {
        "title": str(raw.get("title") or "Imported chat"),
        "character": str(raw.get("character") or ""),
        "settings": settings,
        "messages": clean,
        **dates,
    }


# The chat settings ChatService reads, with the type each must have; others are kept as they are.
_SETTING_TYPES: dict[str, type | tuple[type, ...]] = {
    "mode": str, "persona": str, "template": str, "greeting": int, "params": dict,
}


def _clean_settings(settings: Any) -> dict[str, Any]:
    """The file's chat settings without values of the wrong type (a hand-edited or foreign file):
    such a value would fail later, when the chat is opened, instead of here."""
    if not isinstance(settings, dict):
        return {}
    clean = {}
    for key, value in settings.items():
        expected = _SETTING_TYPES.get(key)
        if expected is not None and (not isinstance(value, expected) or isinstance(value, bool)):
            continue
        if key == "mode" and value not in MODES:
            continue
        clean[key] = value
    return clean


def _from_oobabooga(raw: dict[str, Any], filename: str) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for i, pair in enumerate(raw["internal"]):
        if not (isinstance(pair, list) and len(pair) >= 2 and all(isinstance(x, str) for x in pair[:2])):
            raise ImportProblem(f"{filename}: internal[{i}] must be a [user, bot] pair of strings.")
        user, bot = pair[0], pair[1]
        if user and user != OOBA_VISIBLE_MARKER:
            messages.append({"role": "user", "versions": [user], "active_version": 0})
        if bot:
            messages.append({"role": "assistant", "versions": [bot], "active_version": 0})
    first_user = next((m["versions"][0] for m in messages if m["role"] == "user"), "")
    title = " ".join(first_user.split())[:48] or "Imported chat"
    return {"title": title, "character": "", "settings": {}, "messages": messages}
