"""Read-only queries over the chat history for training data (webui/training/chat_data.py).

The repository's ``messages`` gives only each message's active version; training also needs every
version with its dates and whether it was complete (the preference pairs come from them), and a
chat filter by character, dates and text. Plain records out, as in ``repository.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import selectinload, sessionmaker

from webui.errors import UserFacingError
from webui.storage.models import Conversation, Message, MessageVersion
from webui.storage.repository import ChatRepository
from webui.training.types import ChatSelection


@dataclass(frozen=True)
class ChatSummary:
    """One chat in the Training tab's picker."""

    id: int
    title: str
    character: str
    updated_at: datetime
    n_messages: int


@dataclass(frozen=True)
class VersionRow:
    idx: int
    content: str
    complete: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class MessageRow:
    id: int
    position: int
    role: str
    active_version: int
    versions: tuple[VersionRow, ...]  # by idx

    @property
    def active(self) -> VersionRow:
        """The version shown (the stored index clamped to the versions that exist)."""
        return next((v for v in self.versions if v.idx == self.active_version), self.versions[-1])


@dataclass(frozen=True)
class ChatHistory:
    id: int
    title: str
    character: str
    settings: dict[str, Any]
    messages: list[MessageRow]  # by position


class TrainingQueries:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def of(cls, repo: ChatRepository) -> TrainingQueries:
        """Queries on the database ``repo`` uses."""
        return cls(repo.engine)

    def chats(self, f: ChatSelection) -> list[ChatSummary]:
        """The chats the filter matches, most recently active first, with their message counts."""
        counts = (
            select(Message.conversation_id, func.count().label("n")).group_by(Message.conversation_id).subquery()
        )
        q = select(Conversation, func.coalesce(counts.c.n, 0)).outerjoin(
            counts, counts.c.conversation_id == Conversation.id
        )
        q = _filtered(q, f).order_by(Conversation.updated_at.desc(), Conversation.id.desc())
        with self._sessions() as s:
            return [ChatSummary(c.id, c.title, c.character, c.updated_at, int(n)) for c, n in s.execute(q).all()]

    def history(self, conversation_id: int, user_id: int | None) -> ChatHistory:
        """A chat with every version of every message (UserFacingError if it is not ``user_id``'s)."""
        with self._sessions() as s:
            conv = s.scalars(
                select(Conversation)
                .where(Conversation.id == conversation_id)
                .options(selectinload(Conversation.messages).selectinload(Message.versions))
            ).first()
            if conv is None or conv.user_id != user_id:
                raise UserFacingError(f"Chat {conversation_id} not found.")
            messages = [
                MessageRow(
                    m.id,
                    m.position,
                    m.role,
                    m.active_version,
                    tuple(VersionRow(v.idx, v.content, v.complete, v.created_at, v.updated_at) for v in m.versions),
                )
                for m in conv.messages
                if m.versions
            ]
            settings = json.loads(conv.settings_json or "{}")
            return ChatHistory(conv.id, conv.title, conv.character, settings, messages)

    def message_chats(self, message_ids: list[int], user_id: int | None) -> dict[int, int]:
        """The chat of each message ``user_id`` owns: {message id: conversation id}."""
        with self._sessions() as s:
            rows = s.execute(
                select(Message.id, Message.conversation_id)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Message.id.in_(message_ids), _owner(user_id))
            ).all()
        return {int(m): int(c) for m, c in rows}


def _owner(user_id: int | None) -> Any:
    return Conversation.user_id.is_(None) if user_id is None else Conversation.user_id == user_id


def _filtered(q: Select, f: ChatSelection) -> Select:
    q = q.where(_owner(f.user_id))
    if f.character:
        q = q.where(Conversation.character == f.character)
    if f.since:
        q = q.where(Conversation.updated_at >= _moment(f.since, "since"))
    if f.until:
        q = q.where(Conversation.updated_at < _moment(f.until, "until", end=True))
    if f.conversation_ids is not None:
        q = q.where(Conversation.id.in_(f.conversation_ids))
    if f.message_ids is not None:
        q = q.where(exists().where(Message.conversation_id == Conversation.id, Message.id.in_(f.message_ids)))
    words = (f.search or "").strip()
    if words:
        pattern = "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        hit = (
            select(Message.id)
            .join(MessageVersion, MessageVersion.message_id == Message.id)
            .where(Message.conversation_id == Conversation.id, MessageVersion.content.ilike(pattern, escape="\\"))
        )
        q = q.where(hit.exists())
    return q


def _moment(value: str, name: str, *, end: bool = False) -> datetime:
    """A stored (naive UTC) datetime from an ISO date or datetime; a date's end is the next midnight."""
    text = value.strip()
    try:
        if len(text) <= 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1) if end else day, time())
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserFacingError(f"The {name} date {value!r} is not an ISO date such as 2025-01-31.") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment + timedelta(microseconds=1) if end else moment
