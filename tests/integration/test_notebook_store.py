"""The Notebook's saved prompts in a real database: the migration, the repository, each owner's own list."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from webui.errors import UserFacingError
from webui.storage.db import open_database, sqlite_url
from webui.storage.migrations import MIGRATIONS, current_version
from webui.storage.notebook import NotebookRepository
from webui.storage.repository import ChatRepository, NotFound


@pytest.fixture
def stores(database_url: str) -> tuple[NotebookRepository, ChatRepository]:
    engine = open_database(database_url)
    return NotebookRepository(engine), ChatRepository(engine)


def test_create_edit_rename_delete_and_order(stores: tuple[NotebookRepository, ChatRepository]) -> None:
    notes, _ = stores
    a = notes.create("  Story   start ", "Once upon a time")
    b = notes.create("Poem", "")
    assert a.name == "Story start" and notes.get(a.id).text == "Once upon a time"
    assert [p.name for p in notes.list()] == ["Poem", "Story start"]  # the most recently saved first
    notes.save_text(a.id, "Once upon a time, there was\x00 a cat")
    assert notes.get(a.id).text == "Once upon a time, there was\ufffd a cat"  # NUL cannot be stored everywhere
    assert [p.name for p in notes.list()] == ["Story start", "Poem"]
    assert notes.rename(b.id, "Haiku").name == "Haiku"
    with pytest.raises(UserFacingError, match="already exists"):
        notes.rename(b.id, "Story start")
    with pytest.raises(UserFacingError, match="already exists"):
        notes.create("Haiku")
    with pytest.raises(UserFacingError, match="needs a name"):
        notes.create("   ")
    with pytest.raises(UserFacingError, match="at most 200"):
        notes.create("x" * 201)
    notes.delete(b.id)
    assert [p.id for p in notes.list()] == [a.id]
    with pytest.raises(NotFound):
        notes.get(b.id)


def test_each_owner_sees_only_its_own(stores: tuple[NotebookRepository, ChatRepository]) -> None:
    notes, repo = stores
    alice, bob = repo.ensure_user("alice"), repo.ensure_user("browser:abc")
    mine = notes.create("Draft", "alice's text", user_id=alice)
    theirs = notes.create("Draft", "bob's text", user_id=bob)  # the same name, another owner: allowed
    local = notes.create("Draft", "the local user's", user_id=None)
    assert [p.text for p in notes.list(alice)] == ["alice's text"]
    assert [p.text for p in notes.list(bob)] == ["bob's text"]
    assert [p.text for p in notes.list(None)] == ["the local user's"]
    for action in (lambda: notes.get(mine.id, bob), lambda: notes.save_text(mine.id, "x", bob),
                   lambda: notes.rename(mine.id, "Mine now", bob), lambda: notes.delete(mine.id, bob),
                   lambda: notes.get(theirs.id, None), lambda: notes.get(local.id, alice)):
        with pytest.raises(NotFound):
            action()
    assert notes.get(mine.id, alice).text == "alice's text"  # nothing was changed by the refused calls


def test_deleting_an_account_deletes_its_prompts(stores: tuple[NotebookRepository, ChatRepository],
                                                  database_url: str) -> None:
    notes, repo = stores
    carol = repo.ensure_user("carol")
    notes.create("Hers", "text", user_id=carol)
    with sa.create_engine(database_url).begin() as db:
        db.execute(sa.text("PRAGMA foreign_keys=ON"))
        db.execute(sa.text("delete from users where id = :id"), {"id": carol})
    assert notes.list(carol) == []


def test_a_database_of_the_previous_version_is_upgraded_with_its_data(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the schema as the release before the Notebook left it
        conn.execute(sa.text("create table schema_version (version integer not null)"))
        op = Operations(MigrationContext.configure(conn))
        for migration in MIGRATIONS[:2]:
            migration(op)
        conn.execute(sa.text("insert into schema_version values (2)"))
        conn.execute(sa.text("insert into conversations (title, character, settings_json, created_at, updated_at) "
                             "values ('Old chat', '', '{}', '2026-01-01', '2026-01-01')"))
    engine.dispose()
    upgraded = open_database(url)
    with upgraded.connect() as conn:
        assert current_version(conn) == len(MIGRATIONS)
    assert [c.title for c in ChatRepository(upgraded).list_conversations()] == ["Old chat"]
    assert NotebookRepository(upgraded).create("New", "kept").text == "kept"
