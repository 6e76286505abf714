"""The only code that touches SQLAlchemy sessions. Returns plain records, never ORM objects."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from webui.storage.models import Conversation, Message, MessageVersion, User, utcnow


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
    context_shifted: bool = False  # generated from a shifted KV cache (GenerationStats.context_shifted)
    display: str | None = None  # what the chat draws instead of ``content`` (see update_version); None: content


@dataclass(frozen=True)
class TurnIds:
    """The rows created for one user turn: the user's message and the reply being written."""

    user_message_id: int | None
    reply_message_id: int
    reply_version_id: int


@dataclass(frozen=True)
class SearchHit:
    conversation_id: int
    title: str
    message_id: int
    role: str
    snippet: str


class NotFound(LookupError):
    pass


EXPORT_FORMAT = "webui-chat"
TITLE_LENGTH = 300  # Conversation.title is VARCHAR(300)


def _conv_record(c: Conversation) -> ConversationRecord:
    return ConversationRecord(
        c.id, c.title, c.character, c.user_id, c.created_at, c.updated_at, json.loads(c.settings_json or "{}")
    )


class ChatRepository:
    """Conversations and messages. Each public method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine  # the database, for read-only query modules (webui/storage/training_queries.py)
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # -- users -----------------------------------------------------------------------
    def ensure_user(self, name: str) -> int:
        """The id of the account called ``name``, creating its row on first use.

        Two app instances may create the same account at once: the loser of the race gets a
        unique-name violation, and then finds the winner's row.
        """
        try:
            with self._sessions.begin() as s:
                user_id = s.scalar(select(User.id).where(User.name == name))
                if user_id is None:
                    user = User(name=name)
                    s.add(user)
                    s.flush()
                    user_id = user.id
                return int(user_id)
        except IntegrityError:
            with self._sessions() as s:
                user_id = s.scalar(select(User.id).where(User.name == name))
            if user_id is None:
                raise
            return int(user_id)

    def find_user(self, name: str) -> int | None:
        """The id of the account called ``name``, or None when it has no row (nothing saved yet)."""
        with self._sessions() as s:
            user_id = s.scalar(select(User.id).where(User.name == name))
        return None if user_id is None else int(user_id)

    def users(self) -> dict[str, int]:
        """Every account's id by name (the anonymous history has no row)."""
        with self._sessions() as s:
            return {name: int(user_id) for user_id, name in s.execute(select(User.id, User.name)).all()}

    # -- conversations ---------------------------------------------------------------
    def create_conversation(
        self, title: str = "New chat", character: str = "", user_id: int | None = None, settings: dict | None = None
    ) -> ConversationRecord:
        with self._sessions.begin() as s:
            conv = Conversation(
                title=_title(title), character=character, user_id=user_id, settings_json=json.dumps(settings or {})
            )
            s.add(conv)
            s.flush()
            return _conv_record(conv)

    def list_conversations(self, user_id: int | None = None) -> list[ConversationRecord]:
        with self._sessions() as s:
            q = select(Conversation).where(
                Conversation.user_id.is_(user_id) if user_id is None else Conversation.user_id == user_id
            )
            rows = s.scalars(q.order_by(Conversation.updated_at.desc(), Conversation.id.desc())).all()
            return [_conv_record(c) for c in rows]

    def get_conversation(self, conv_id: int, user_id: int | None = None) -> ConversationRecord:
        with self._sessions() as s:
            return _conv_record(self._owned(s, conv_id, user_id))

    def rename_conversation(self, conv_id: int, title: str, user_id: int | None = None) -> None:
        with self._sessions.begin() as s:
            self._owned(s, conv_id, user_id).title = _title(title.strip() or "Untitled")

    def delete_conversation(self, conv_id: int, user_id: int | None = None) -> None:
        with self._sessions.begin() as s:
            s.delete(self._owned(s, conv_id, user_id))

    def update_settings(
        self, conv_id: int, changes: dict[str, Any], user_id: int | None = None, *, character: str | None = None
    ) -> ConversationRecord:
        """Merge ``changes`` into the chat's settings (a None value removes the key)."""
        with self._sessions.begin() as s:
            conv = self._owned(s, conv_id, user_id, lock=True)
            settings = json.loads(conv.settings_json or "{}")
            for key, value in changes.items():
                if value is None:
                    settings.pop(key, None)
                else:
                    settings[key] = value
            conv.settings_json = json.dumps(settings)
            if character is not None:
                conv.character = character
            return _conv_record(conv)

    def branch_conversation(self, conv_id: int, upto_message_id: int, user_id: int | None = None) -> ConversationRecord:
        """A new chat holding copies of the messages up to and including ``upto_message_id``."""
        with self._sessions.begin() as s:
            src = self._owned(s, conv_id, user_id)
            upto = s.get(Message, upto_message_id)
            if upto is None or upto.conversation_id != conv_id:
                raise NotFound(f"Message {upto_message_id} not found in conversation {conv_id}")
            new = Conversation(
                title=f"{src.title} (branch)"[:300],
                character=src.character,
                user_id=src.user_id,
                settings_json=src.settings_json,
            )
            s.add(new)
            s.flush()
            for msg in src.messages:
                if msg.position > upto.position:
                    break
                copy = Message(
                    conversation_id=new.id, position=msg.position, role=msg.role, active_version=msg.active_version
                )
                s.add(copy)
                s.flush()
                for v in msg.versions:
                    s.add(MessageVersion(message_id=copy.id, idx=v.idx, content=v.content, complete=True,
                                         context_shifted=v.context_shifted, display=v.display))
            s.flush()
            return _conv_record(new)

    def search_messages(self, query: str, user_id: int | None = None, limit: int = 50) -> list[SearchHit]:
        """Chats whose messages (any version) contain ``query``, case-insensitively, newest chat first.

        A plain ``LIKE`` scan: portable to every SQLAlchemy database and fast enough for the
        tens of thousands of messages one person writes; no index to keep in sync.
        """
        words = query.strip()
        if not words:
            return []
        pattern = "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self._sessions() as s:
            owner = Conversation.user_id.is_(None) if user_id is None else Conversation.user_id == user_id
            rows = s.execute(
                select(Conversation.id, Conversation.title, Message.id, Message.role, MessageVersion.content)
                .join(Message, Message.conversation_id == Conversation.id)
                .join(MessageVersion, MessageVersion.message_id == Message.id)
                .where(owner, MessageVersion.content.ilike(pattern, escape="\\"))
                .order_by(Conversation.updated_at.desc(), Message.position)
                .limit(limit * 4)
            ).all()
        hits: list[SearchHit] = []
        seen: set[int] = set()
        for conv_id, title, msg_id, role, content in rows:
            if msg_id in seen:
                continue
            seen.add(msg_id)
            hits.append(SearchHit(conv_id, title, msg_id, role, _snippet(content, words)))
            if len(hits) >= limit:
                break
        return hits

    @staticmethod
    def _owned(s: Session, conv_id: int, user_id: int | None, *, lock: bool = False) -> Conversation:
        """The conversation if ``user_id`` owns it, else NotFound.

        ``lock``: first take the conversation's write lock for the rest of the transaction, for a
        change that reads before it writes (the next position, the settings to merge). Another
        writer, in this process or another app instance on the same database, waits until this
        transaction ends and then reads what it wrote: no two messages get one position, no merge
        is lost. A no-op UPDATE does it on every database: a row lock on PostgreSQL, the database
        write lock on SQLite (taken before the first read, so the reads see the latest commit).
        """
        if lock:
            s.execute(
                update(Conversation).where(Conversation.id == conv_id).values(updated_at=Conversation.updated_at),
                execution_options={"synchronize_session": False},
            )
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
                .join(
                    MessageVersion,
                    (MessageVersion.message_id == Message.id) & (MessageVersion.idx == Message.active_version),
                )
                .join(counts, counts.c.message_id == Message.id)
                .where(Message.conversation_id == conv_id)
                .order_by(Message.position)
            ).all()
            return [
                MessageRecord(m.id, m.position, m.role, v.content, v.id, m.active_version, n, v.complete,
                              v.context_shifted, v.display)
                for m, v, n in rows
            ]

    def add_message(self, conv_id: int, role: str, content: str, user_id: int | None = None) -> MessageRecord:
        with self._sessions.begin() as s:
            conv = self._owned(s, conv_id, user_id, lock=True)
            msg, ver = self._append(s, conv, role, content, complete=True)
            return MessageRecord(msg.id, msg.position, role, content, ver.id, 0, 1, True)

    def start_turn(self, conv_id: int, user_text: str | None, user_id: int | None = None) -> TurnIds:
        """In one transaction: store the user's message (if any) and an empty reply to fill."""
        with self._sessions.begin() as s:
            conv = self._owned(s, conv_id, user_id, lock=True)
            user_msg = self._append(s, conv, "user", user_text, complete=True)[0] if user_text is not None else None
            reply, ver = self._append(s, conv, "assistant", "", complete=False)
            return TurnIds(user_msg.id if user_msg else None, reply.id, ver.id)

    def update_version(self, version_id: int, content: str, complete: bool, *, context_shifted: bool = False,
                       display: str | None = None) -> None:
        """Write a reply's text so far (called about once a second while streaming). ``context_shifted``
        marks the version as generated from a shifted KV cache (a later write never clears the mark: a
        continued reply keeps its first part's). ``display``: what the chat draws instead of ``content``
        (an upstream-style output_modifier's text, webui/chat/hooks.py); every write replaces it, so a
        write without one (a streaming flush, a continue) leaves the chat drawing ``content``.

        The conversation row first, then the version: the order every writer locks them in, so
        writers on one chat in two app instances wait for each other instead of deadlocking.
        """
        with self._sessions.begin() as s:
            now = utcnow()
            conv_id = (
                select(Message.conversation_id)
                .join(MessageVersion)
                .where(MessageVersion.id == version_id)
                .scalar_subquery()
            )
            s.execute(update(Conversation).where(Conversation.id == conv_id).values(updated_at=now))
            values: dict[str, Any] = {"content": _text(content), "complete": complete, "updated_at": now,
                                      "display": None if display is None else _text(display)}
            if context_shifted:
                values["context_shifted"] = True
            s.execute(update(MessageVersion).where(MessageVersion.id == version_id).values(**values))

    def _owned_message(self, s: Session, message_id: int, user_id: int | None, *, lock: bool = False) -> Message:
        """The message if ``user_id`` owns its chat; ``lock``: hold the chat's write lock (see ``_owned``)."""
        conv_id = s.scalar(select(Message.conversation_id).where(Message.id == message_id))
        if conv_id is None:
            raise NotFound(f"Message {message_id} not found")
        self._owned(s, conv_id, user_id, lock=lock)
        msg = s.get(Message, message_id)
        if msg is None:  # deleted by another writer before the lock was ours
            raise NotFound(f"Message {message_id} not found")
        return msg

    def add_version(self, message_id: int, user_id: int | None = None, content: str = "") -> int:
        """Add a new (incomplete) version to a message and make it the active one; returns its id."""
        with self._sessions.begin() as s:
            msg = self._owned_message(s, message_id, user_id, lock=True)
            idx = (
                s.scalar(select(func.max(MessageVersion.idx)).where(MessageVersion.message_id == message_id)) or 0
            ) + 1
            ver = MessageVersion(message_id=message_id, idx=idx, content=_text(content), complete=False)
            s.add(ver)
            msg.active_version = idx
            msg.conversation.updated_at = utcnow()
            s.flush()
            return ver.id

    def set_active_version(self, message_id: int, idx: int, user_id: int | None = None) -> None:
        """Show version ``idx`` (0-based) of a message; clamps to the versions that exist."""
        with self._sessions.begin() as s:
            msg = self._owned_message(s, message_id, user_id, lock=True)
            top = s.scalar(select(func.max(MessageVersion.idx)).where(MessageVersion.message_id == message_id)) or 0
            msg.active_version = max(0, min(idx, top))

    def edit_message(self, message_id: int, content: str, user_id: int | None = None) -> None:
        """Replace the text of the message's active version (the user's text now: no context-shift mark,
        no display text of its own)."""
        with self._sessions.begin() as s:
            msg = self._owned_message(s, message_id, user_id, lock=True)
            s.execute(
                update(MessageVersion)
                .where(MessageVersion.message_id == message_id, MessageVersion.idx == msg.active_version)
                .values(content=_text(content), complete=True, context_shifted=False, display=None,
                        updated_at=utcnow())
            )
            msg.conversation.updated_at = utcnow()

    def delete_message(self, message_id: int, user_id: int | None = None) -> None:
        """Delete one message (all its versions)."""
        with self._sessions.begin() as s:
            msg = self._owned_message(s, message_id, user_id, lock=True)  # chat row first, as every writer
            s.execute(delete(MessageVersion).where(MessageVersion.message_id == message_id))
            s.delete(msg)

    # -- export / import ---------------------------------------------------------------
    def export_conversation(self, conv_id: int, user_id: int | None = None) -> dict[str, Any]:
        """The chat with every message version, as JSON-ready data (see ``import_conversation``)."""
        with self._sessions() as s:
            conv = self._owned(s, conv_id, user_id)
            return {
                "format": EXPORT_FORMAT,
                "version": 1,
                "title": conv.title,
                "character": conv.character,
                "settings": json.loads(conv.settings_json or "{}"),
                "created_at": conv.created_at.isoformat(),
                "updated_at": conv.updated_at.isoformat(),
                "messages": [
                    {
                        "role": m.role,
                        "active_version": m.active_version,
                        "versions": [v.content for v in m.versions],
                    }
                    for m in conv.messages
                ],
            }

    def import_conversation(
        self, data: dict[str, Any], user_id: int | None = None, *, keep_dates: bool = False
    ) -> ConversationRecord:
        """Create a chat from ``export_conversation`` data (already validated by the caller).

        ``keep_dates``: restore its ``created_at`` / ``updated_at`` (ISO strings; a missing or
        unreadable one is now), as a backup restore does; otherwise the chat is new as of now.
        """
        with self._sessions.begin() as s:
            conv = Conversation(
                title=_title(str(data.get("title") or "Imported chat")),
                character=str(data.get("character") or ""),
                user_id=user_id,
                settings_json=json.dumps(data.get("settings") or {}),
            )
            if keep_dates:
                conv.created_at = _stored_date(data.get("created_at"))
                conv.updated_at = _stored_date(data.get("updated_at"), default=conv.created_at)
            s.add(conv)
            s.flush()
            for pos, m in enumerate(data.get("messages", [])):
                versions = list(m["versions"]) or [""]
                active = min(max(int(m.get("active_version", len(versions) - 1)), 0), len(versions) - 1)
                msg = Message(conversation_id=conv.id, position=pos, role=m["role"], active_version=active)
                s.add(msg)
                s.flush()
                for idx, text in enumerate(versions):
                    s.add(MessageVersion(message_id=msg.id, idx=idx, content=_text(text), complete=True))
            s.flush()
            return _conv_record(conv)

    @staticmethod
    def _append(
        s: Session, conv: Conversation, role: str, content: str, complete: bool
    ) -> tuple[Message, MessageVersion]:
        last = s.scalar(select(func.max(Message.position)).where(Message.conversation_id == conv.id))
        msg = Message(
            conversation_id=conv.id, position=(last + 1 if last is not None else 0), role=role, active_version=0
        )
        s.add(msg)
        s.flush()
        ver = MessageVersion(message_id=msg.id, idx=0, content=_text(content), complete=complete)
        s.add(ver)
        conv.updated_at = utcnow()
        s.flush()
        return msg, ver


def _stored_date(value: Any, default: datetime | None = None) -> datetime:
    """A naive UTC datetime from an exported ISO string (``default``, else now, when unreadable)."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return default or utcnow()
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


def _text(value: str) -> str:
    """``value`` as every database stores it: PostgreSQL text cannot hold NUL, so NUL becomes U+FFFD."""
    return value.replace("\x00", "\ufffd")


def _title(value: str) -> str:
    """A chat title that fits its column (PostgreSQL refuses a longer one; SQLite would keep it)."""
    return _text(value)[:TITLE_LENGTH]


def _snippet(content: str, query: str, width: int = 60) -> str:
    at = content.lower().find(query.lower())
    if at < 0:
        return content[: 2 * width]
    start, end = max(0, at - width), min(len(content), at + len(query) + width)
    return ("…" if start else "") + " ".join(content[start:end].split()) + ("…" if end < len(content) else "")
