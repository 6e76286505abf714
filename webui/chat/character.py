"""The in-memory character model: a superset of Character Card V2/V3 fields.

Every on-disk format (Oobabooga YAML/JSON, Pygmalion, TavernAI V1, Card V2/V3 JSON or PNG)
is parsed into this one model by ``webui.chat.cards``; the prompt builder only reads this.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LorebookEntry(BaseModel):
    """One character_book entry (Card V2 spec field names)."""

    model_config = ConfigDict(extra="allow")

    keys: list[str] = Field(default_factory=list)
    content: str = ""
    extensions: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    insertion_order: int = 100
    case_sensitive: bool | None = None
    name: str = ""
    priority: int | None = None
    id: int | str | None = None
    comment: str = ""
    selective: bool = False
    secondary_keys: list[str] = Field(default_factory=list)
    constant: bool = False
    position: str = "before_char"
    # V3: keys are regular expressions when true (written to V3 exports; to V2 only when true).
    use_regex: bool = False


class Lorebook(BaseModel):
    """A character_book (Card V2 spec)."""

    model_config = ConfigDict(extra="allow")

    name: str = ""
    description: str = ""
    scan_depth: int | None = None
    token_budget: int | None = None
    recursive_scanning: bool = False
    extensions: dict[str, Any] = Field(default_factory=dict)
    entries: list[LorebookEntry] = Field(default_factory=list)


class Character(BaseModel):
    """A character as the chat uses it. Field names follow Character Card V2/V3."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = ""
    alternate_greetings: list[str] = Field(default_factory=list)
    mes_example: str = ""
    system_prompt: str = ""
    post_history_instructions: str = ""
    creator_notes: str = ""
    tags: list[str] = Field(default_factory=list)
    creator: str = ""
    character_version: str = ""
    character_book: Lorebook | None = None
    extensions: dict[str, Any] = Field(default_factory=dict)
    # Keys found in the card's data (or a flat file) that no format defines; written back on export.
    extra_fields: dict[str, Any] = Field(default_factory=dict)
    # V3-only fields, kept so export round-trips them.
    nickname: str = ""
    group_only_greetings: list[str] = Field(default_factory=list)
    assets: list[dict[str, Any]] | None = None
    creator_notes_multilingual: dict[str, str] | None = None
    source: list[str] | None = None
    creation_date: int | None = None
    modification_date: int | None = None
    # Where it came from and its picture; not part of any card spec.
    avatar_png: bytes | None = Field(default=None, exclude=True, repr=False)
    source_path: str | None = Field(default=None, exclude=True)

    def greetings(self) -> list[str]:
        """All greetings a chat may open with: first_mes, then the alternates."""
        return [g for g in [self.first_mes, *self.alternate_greetings] if g.strip()]


def substitute_macros(text: str, char: str, user: str) -> str:
    """Replace ``{{char}}``, ``{{user}}``, ``<BOT>`` and ``<USER>`` (case-insensitive braces)."""
    import re

    text = re.sub(r"\{\{\s*char\s*\}\}", lambda _m: char, text, flags=re.IGNORECASE)
    text = re.sub(r"\{\{\s*user\s*\}\}", lambda _m: user, text, flags=re.IGNORECASE)
    return text.replace("<BOT>", char).replace("<USER>", user)
