"""Which lorebook (character_book) entries enter the prompt, following Character Card V2 semantics.

Rules (V2 spec, with SillyTavern's behaviour where the spec is silent):

- Only the last ``scan_depth`` messages are scanned (the book's value, else the caller's default;
  0 scans nothing, so only constant entries activate). An entry's ``extensions.scan_depth``
  (SillyTavern's per-entry override) narrows or widens that for the entry.
- An entry activates if ``enabled`` and either ``constant`` or any of its ``keys`` matches; if
  ``selective`` and it has ``secondary_keys``, one of those must match too (with no secondary keys,
  ``selective`` is ignored, as in SillyTavern).
- Keys match as substrings, case-insensitively unless ``case_sensitive`` is true. Whole-word
  matching is opt-in: ``whole_words=True`` or the entry's ``extensions.match_whole_words`` (the
  SillyTavern field; it wins over the argument). With ``use_regex`` (V3) keys are regular
  expressions; an invalid one never matches. Empty keys are ignored.
- With the book's ``recursive_scanning``, activated entries' content is scanned too, until nothing
  new activates.
- Token budget (the book's ``token_budget`` if positive, else the default): constant entries are
  kept first, then by ``priority`` highest first ("lower priority value = discarded first"; an
  entry without priority ranks by its ``insertion_order``), then in book order. Entries are taken
  in that rank until the next one does not fit; it and all lower-ranked ones are dropped.
- The result is sorted by ``insertion_order`` ascending: the spec's "lower insertion order =
  inserted higher", so a larger value sits later, closer to the end of the prompt.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from webui.chat.character import Lorebook, LorebookEntry

Position = Literal["before_char", "after_char"]


def activate_entries(
    book: Lorebook,
    history: list[str],
    *,
    scan_depth_default: int = 4,
    token_budget_default: int = 2048,
    count_tokens: Callable[[str], int],
    whole_words: bool = False,
) -> list[LorebookEntry]:
    """Entries of ``book`` to insert for this ``history`` (oldest message first), in prompt order."""
    depth = book.scan_depth if book.scan_depth is not None else scan_depth_default
    budget = book.token_budget if book.token_budget and book.token_budget > 0 else token_budget_default
    candidates = [(i, e) for i, e in enumerate(book.entries) if e.enabled]
    active: dict[int, LorebookEntry] = {}
    extra_text: list[str] = []  # activated content, scanned when recursive_scanning is on
    while True:
        newly = {
            i: e
            for i, e in candidates
            if i not in active
            and (e.constant or _entry_matches(e, _scan_text(history, _depth(e, depth)) + extra_text, whole_words))
        }
        if not newly:
            break
        active.update(newly)
        if not book.recursive_scanning:
            break
        extra_text = [e.content for e in active.values()]
    kept = _fit_budget(sorted(active.items()), budget, count_tokens)
    return [e for _i, e in sorted(kept, key=lambda item: (item[1].insertion_order, item[0]))]


def group_by_position(entries: list[LorebookEntry]) -> dict[Position, list[LorebookEntry]]:
    """Split activated entries into ``before_char`` and ``after_char`` (order kept).

    Any other ``position`` value counts as ``before_char``, the spec's default.
    """
    groups: dict[Position, list[LorebookEntry]] = {"before_char": [], "after_char": []}
    for entry in entries:
        groups["after_char" if entry.position == "after_char" else "before_char"].append(entry)
    return groups


def _depth(entry: LorebookEntry, default: int) -> int:
    value = entry.extensions.get("scan_depth")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _scan_text(history: list[str], depth: int) -> list[str]:
    return history[-depth:] if depth > 0 else []


def _entry_matches(entry: LorebookEntry, texts: list[str], whole_words: bool) -> bool:
    if not texts:
        return False
    text = "\n".join(texts)
    whole = entry.extensions.get("match_whole_words")
    whole = whole if isinstance(whole, bool) else whole_words
    if not _any_key_matches(entry.keys, text, entry, whole):
        return False
    if entry.selective and any(k.strip() for k in entry.secondary_keys):
        return _any_key_matches(entry.secondary_keys, text, entry, whole)
    return True


def _any_key_matches(keys: list[str], text: str, entry: LorebookEntry, whole_words: bool) -> bool:
    flags = 0 if entry.case_sensitive else re.IGNORECASE
    for key in keys:
        if not key.strip():
            continue
        if entry.use_regex:
            try:
                if re.search(key, text, flags):
                    return True
            except re.error:
                continue
        elif whole_words:
            if re.search(rf"(?<!\w){re.escape(key.strip())}(?!\w)", text, flags):
                return True
        elif entry.case_sensitive:
            if key.strip() in text:
                return True
        elif key.strip().casefold() in text.casefold():
            return True
    return False


def _fit_budget(
    active: list[tuple[int, LorebookEntry]], budget: int, count_tokens: Callable[[str], int]
) -> list[tuple[int, LorebookEntry]]:
    def rank(item: tuple[int, LorebookEntry]) -> tuple[int, int, int]:
        index, entry = item
        priority = entry.priority if entry.priority is not None else entry.insertion_order
        return (0 if entry.constant else 1, -priority, index)

    kept: list[tuple[int, LorebookEntry]] = []
    used = 0
    for item in sorted(active, key=rank):
        cost = count_tokens(item[1].content)
        if used + cost > budget:
            break
        kept.append(item)
        used += cost
    return kept
