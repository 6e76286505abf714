"""Personas: who the user speaks as in a chat (name, description, avatar)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from webui.storage.models import Persona
from webui.storage.repository import NotFound

NAME_LENGTH = 200  # Persona.name is VARCHAR(200)


@dataclass(frozen=True)
class PersonaRecord:
    id: int
    name: str
    description: str
    avatar: bytes | None


def _record(p: Persona) -> PersonaRecord:
    return PersonaRecord(p.id, p.name, p.description, p.avatar)


class PersonaRepository:
    """Personas per user (``user_id`` None when accounts are off). Names are unique per user."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def list(self, user_id: int | None = None) -> list[PersonaRecord]:
        with self._sessions() as s:
            return [_record(p) for p in s.scalars(self._query(user_id).order_by(Persona.name)).all()]

    def get(self, name: str, user_id: int | None = None) -> PersonaRecord | None:
        with self._sessions() as s:
            p = s.scalars(self._query(user_id).where(Persona.name == name)).first()
            return _record(p) if p else None

    def save(
        self, name: str, description: str, avatar: bytes | None = None, user_id: int | None = None
    ) -> PersonaRecord:
        """Create the persona, or update the one with this name (an avatar of None keeps the old one)."""
        name = name.strip().replace("\x00", "")
        description = description.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL
        if not name:
            raise ValueError("A persona needs a name.")
        if len(name) > NAME_LENGTH:
            raise ValueError(f"A persona name has at most {NAME_LENGTH} characters.")
        with self._sessions.begin() as s:
            p = s.scalars(self._query(user_id).where(Persona.name == name)).first()
            if p is None:
                p = Persona(name=name, user_id=user_id, description=description, avatar=avatar)
                s.add(p)
            else:
                p.description = description
                if avatar is not None:
                    p.avatar = avatar
            s.flush()
            return _record(p)

    def delete(self, name: str, user_id: int | None = None) -> None:
        with self._sessions.begin() as s:
            p = s.scalars(self._query(user_id).where(Persona.name == name)).first()
            if p is None:
                raise NotFound(f"Persona {name!r} not found")
            s.delete(p)

    @staticmethod
    def _query(user_id: int | None):  # type: ignore[no-untyped-def]
        owner = Persona.user_id.is_(None) if user_id is None else Persona.user_id == user_id
        return select(Persona).where(owner)


__all__ = ["PersonaRecord", "PersonaRepository"]
