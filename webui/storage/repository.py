"""The only code that touches SQLAlchemy sessions. Returns plain records, never ORM objects."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from webui.storage.models import Conversation, Message, MessageVersion, utcnow


@dataclass(frozen=True)
class ConversationRecord:
    id: int
    title: str
    character: str
    user_id: int | None
    created_at: datetime
    updated_at: datetime
    settings: dict[str, Any]


@dataclass(frozen=True)
class MessageRecord:
    id: int
    position: int
    role: str
    content: str
    version_id: int
    active_version: int
    version_count: int
    complete: bool


@dataclass(frozen=True)
class TurnIds:
    """The rows created for one user turn: the user's message and the reply being written."""

    user_message_id: int | None
    reply_message_id: int
    reply_version_id: int


class NotFound(LookupError):
    pass


def _conv_record(c: Conversation) -> ConversationRecord:
    return ConversationRecord(c.id, c.title, c.character, c.user_id, c.created_at, c.updated_at, json.loads(c.settings_json or "{}"))


class ChatRepository:
    """Conversations and messages. Each public method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # -- conversations ---------------------------------------------------------------
    def create_conversation(
        self, title: str = "New chat", character: str = "", user_id: int | None = None, settings: dict | None = None
    ) -> ConversationRecord:
        with self._sessions.begin() as s:
            conv = Conversation(title=title, character=character, user_id=user_id, settings_json=json.dumps(settings or {}))
            s.add(conv)
            s.flush()
            return _conv_record(conv)

    def list_conversations(self, user_id: int | None = None) -> list[ConversationRecord]:
        with self._sessions() as s:
            q = select(Conversation).where(Conversation.user_id.is_(user_id) if user_id is None else Conversation.user_id == user_id)
            rows = s.scalars(q.order_by(Conversation.updated_at.desc(), Conversation.id.desc())).all()
            return [_conv_record(c) for c in rows]

    def get_conversation(self, conv_id: int, user_id: int | None = None) -> ConversationRecord:
        with self._sessions() as s:
            return _conv_record(self._owned(s, conv_id, user_id))

    def rename_conversation(self, conv_id: int, title: str, user_id: int | None = None) -> None:
        with self._sessions.begin() as s:
            self._owned(s, conv_id, user_id).title = title.strip() or "Untitled"

    def delete_conversation(self, conv_id: int, user_id: int | None = None) -> None:
        with self._sessions.begin() as s:
            s.delete(self._owned(s, conv_id, user_id))

    @staticmethod
    def _owned(s: Session, conv_id: int, user_id: int | None) -> Conversation:
        conv = s.get(Conversation, conv_id)
        if conv is None or conv.user_id != user_id:
            raise NotFound(f"Conversation {conv_id} not found")
        return conv

    # -- messages ----------------------------------------------------------------------
    def messages(self, conv_id: int, user_id: int | None = None) -> list[MessageRecord]:
        """The conversation's messages, each with its active version's text."""
        with self._sessions() as s:
            self._owned(s, conv_id, user_id)
            counts = (
                select(MessageVersion.message_id, func.count().label("n"))
                .group_by(MessageVersion.message_id)
                .subquery()
            )
            rows = s.execute(
                select(Message, MessageVersion, counts.c.n)
                .join(MessageVersion, (MessageVersion.message_id == Message.id) & (MessageVersion.idx == Message.active_version))
                .join(counts, counts.c.message_id == Message.id)
                .where(Message.conversation_id == conv_id)
                .order_by(Message.position)
            ).all()
            return [
                MessageRecord(m.id, m.position, m.role, v.content, v.id, m.active_version, n, v.complete)
                for m, v, n in rows
            ]

    def add_message(self, conv_id: int, role: str, content: str, user_id: int | None = None) -> MessageRecord:
        with self._sessions.begin() as s:
            conv = self._owned(s, conv_id, user_id)
            msg, ver = self._append(s, conv, role, content, complete=True)
            return MessageRecord(msg.id, msg.position, role, content, ver.id, 0, 1, True)

    def start_turn(self, conv_id: int, user_text: str | None, user_id: int | None = None) -> TurnIds:
        """In one transaction: store the user's message (if any) and an empty reply to fill."""
        with self._sessions.begin() as s:
            conv = self._owned(s, conv_id, user_id)
            user_msg = self._append(s, conv, "user", user_text, complete=True)[0] if user_text is not None else None
            reply, ver = self._append(s, conv, "assistant", "", complete=False)
            return TurnIds(user_msg.id if user_msg else None, reply.id, ver.id)

    def update_version(self, version_id: int, content: str, complete: bool) -> None:
        """Write a reply's text so far (called about once a second while streaming)."""
        with self._sessions.begin() as s:
            now = utcnow()
            s.execute(update(MessageVersion).where(MessageVersion.id == version_id).values(content=content, complete=complete, updated_at=now))
            conv_id = select(Message.conversation_id).join(MessageVersion).where(MessageVersion.id == version_id).scalar_subquery()
            s.execute(update(Conversation).where(Conversation.id == conv_id).values(updated_at=now))

    @staticmethod
    def _append(s: Session, conv: Conversation, role: str, content: str, complete: bool) -> tuple[Message, MessageVersion]:
        last = s.scalar(select(func.max(Message.position)).where(Message.conversation_id == conv.id))
        msg = Message(conversation_id=conv.id, position=(last + 1 if last is not None else 0), role=role, active_version=0)
        s.add(msg)
        s.flush()
        ver = MessageVersion(message_id=msg.id, idx=0, content=content, complete=complete)
        s.add(ver)
        conv.updated_at = utcnow()
        s.flush()
        return msg, ver
