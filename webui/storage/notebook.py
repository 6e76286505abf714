"""The Notebook's saved prompts: free-form texts under a name, each owned like a chat.

``user_id`` None is the local single-user history (no accounts); an account or a browser identity
sees only its own prompts, and another owner's id answers ``NotFound``. Names are unique per owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from webui.errors import UserFacingError
from webui.storage.models import NotebookPrompt, utcnow
from webui.storage.repository import NotFound

NAME_LENGTH = 200  # NotebookPrompt.name is VARCHAR(200)


@dataclass(frozen=True)
class NotebookPromptRecord:
    id: int
    name: str
    text: str
    user_id: int | None
    updated_at: datetime


def _record(p: NotebookPrompt) -> NotebookPromptRecord:
    return NotebookPromptRecord(p.id, p.name, p.text, p.user_id, p.updated_at)


def clean_name(name: str) -> str:
    """A prompt's name as stored; refuses an empty or too long one."""
    name = " ".join(name.replace("\x00", "").split())
    if not name:
        raise UserFacingError("A saved prompt needs a name.")
    if len(name) > NAME_LENGTH:
        raise UserFacingError(f"A prompt name has at most {NAME_LENGTH} characters.")
    return name


def clean_text(text: str) -> str:
    return text.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL


class NotebookRepository:
    """Saved Notebook prompts per owner. Each public method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def list(self, user_id: int | None = None) -> list[NotebookPromptRecord]:
        """The owner's prompts, the most recently saved first."""
        with self._sessions() as s:
            query = self._query(user_id).order_by(NotebookPrompt.updated_at.desc(), NotebookPrompt.id.desc())
            return [_record(p) for p in s.scalars(query).all()]

    def get(self, prompt_id: int, user_id: int | None = None) -> NotebookPromptRecord:
        with self._sessions() as s:
            return _record(self._own(s, prompt_id, user_id))

    def create(self, name: str, text: str = "", user_id: int | None = None) -> NotebookPromptRecord:
        name = clean_name(name)
        with self._sessions.begin() as s:
            self._check_free(s, name, user_id)
            prompt = NotebookPrompt(name=name, text=clean_text(text), user_id=user_id)
            s.add(prompt)
            s.flush()
            return _record(prompt)

    def save_text(self, prompt_id: int, text: str, user_id: int | None = None) -> NotebookPromptRecord:
        with self._sessions.begin() as s:
            prompt = self._own(s, prompt_id, user_id)
            prompt.text = clean_text(text)
            prompt.updated_at = utcnow()
            s.flush()
            return _record(prompt)

    def rename(self, prompt_id: int, name: str, user_id: int | None = None) -> NotebookPromptRecord:
        name = clean_name(name)
        with self._sessions.begin() as s:
            prompt = self._own(s, prompt_id, user_id)
            if prompt.name != name:
                self._check_free(s, name, user_id)
                prompt.name = name
            s.flush()
            return _record(prompt)

    def delete(self, prompt_id: int, user_id: int | None = None) -> None:
        with self._sessions.begin() as s:
            s.delete(self._own(s, prompt_id, user_id))

    def _own(self, s: Session, prompt_id: int, user_id: int | None) -> NotebookPrompt:
        prompt = s.scalars(self._query(user_id).where(NotebookPrompt.id == prompt_id)).first()
        if prompt is None:
            raise NotFound(f"Saved prompt {prompt_id} not found.")
        return prompt

    def _check_free(self, s: Session, name: str, user_id: int | None) -> None:
        if s.scalars(self._query(user_id).where(NotebookPrompt.name == name)).first() is not None:
            raise UserFacingError(f"A saved prompt named {name!r} already exists; choose another name.")

    @staticmethod
    def _query(user_id: int | None):  # type: ignore[no-untyped-def]
        owner = NotebookPrompt.user_id.is_(None) if user_id is None else NotebookPrompt.user_id == user_id
        return select(NotebookPrompt).where(owner)


__all__ = ["NotebookPromptRecord", "NotebookRepository"]
