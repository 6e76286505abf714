"""The Notebook's saved prompts in an archive: ``notebook.json``, a list of
``{"owner", "name", "text", "updated_at"}``, oldest first.

Export writes each owner's prompts as it writes their chats; import checks the list before anything
is written, then adds each prompt to its owner (or to the importing account), with the rule
personas have: a prompt whose name the owner already uses is kept and the imported one skipped
("already there" when the text is the same). An archive without ``notebook.json`` (made before the
Notebook existed) imports as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from webui.archive.layout import NOTEBOOK_FILE, ArchiveProblem
from webui.errors import UserFacingError
from webui.storage.notebook import NotebookRepository, clean_name, clean_text

Owners = Sequence[tuple[str | None, int | None]]


def exported_prompts(prompts: NotebookRepository, owners: Owners) -> list[dict[str, Any]]:
    """``notebook.json``'s entries for ``owners`` (account name, user id), each owner's oldest first."""
    entries = []
    for owner, user_id in owners:
        for prompt in reversed(prompts.list(user_id)):
            entries.append({"owner": owner, "name": prompt.name, "text": prompt.text,
                             "updated_at": prompt.updated_at.isoformat()})
    return entries


def parse_prompts(raw: bytes) -> list[dict[str, Any]]:
    """The archive's ``notebook.json`` checked: a list of prompts with a valid name, a text and an owner
    (an account name or null). Raises ArchiveProblem (nothing is imported then)."""
    bad = ArchiveProblem(f"the archive's {NOTEBOOK_FILE} is not a list of saved prompts; nothing was imported")
    try:
        entries = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad from exc
    if not isinstance(entries, list):
        raise bad
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("text", ""), str):
            raise bad
        owner = entry.get("owner")
        if owner is not None and not (isinstance(owner, str) and owner.strip()):
            raise bad
        try:
            clean_name(entry.get("name") if isinstance(entry.get("name"), str) else "")
        except UserFacingError as exc:
            raise ArchiveProblem(f"the archive's {NOTEBOOK_FILE} holds a prompt with a bad name ({exc}); "
                                 "nothing was imported") from exc
    return entries


def import_prompts(
    entries: list[dict[str, Any]], prompts: NotebookRepository, owner_of: Callable[[dict[str, Any]], str | None],
    user_id_of: Callable[[str | None], int | None],
) -> tuple[int, list[str], list[str]]:
    """Add the prompts (in archive order, so the newest stays listed first); ``owner_of`` gives an
    entry's owner as the import options say, ``user_id_of`` that owner's user id. Returns how many
    were added and the labels of those already there (same text) and of yours kept (other text)."""
    added, same, kept = 0, [], []
    texts: dict[int | None, dict[str, str]] = {}  # per user id: name -> text of the prompts there
    for entry in entries:
        owner = owner_of(entry)
        user_id = user_id_of(owner)
        if user_id not in texts:
            texts[user_id] = {p.name: p.text for p in prompts.list(user_id)}
        name, text = clean_name(entry["name"]), clean_text(entry.get("text", ""))
        if name in texts[user_id]:
            label = f"saved prompt {name!r}" + (f" of {owner}" if owner else "")
            (same if texts[user_id][name] == text else kept).append(label)
            continue
        prompts.create(name, text, user_id)
        texts[user_id][name] = text
        added += 1
    return added, same, kept
