import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from webui.errors import StorageError
from webui.storage.db import ensure_data_dir, open_database, sqlite_url
from webui.storage.migrations import MIGRATIONS, current_version
from webui.storage.models import Base
from webui.storage.repository import ChatRepository, NotFound


def test_migrations_build_exactly_the_orm_schema(database_url: str) -> None:
    engine = open_database(database_url)
    with engine.connect() as conn:
        assert current_version(conn) == len(MIGRATIONS)
        ctx = MigrationContext.configure(
            conn, opts={"include_name": lambda name, type_, parent: not (type_ == "table" and name == "schema_version")}
        )
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_wal_mode_and_foreign_keys(tmp_path: Path) -> None:
    engine = open_database(sqlite_url(tmp_path))
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_reopening_keeps_data_and_does_not_remigrate(database_url: str) -> None:
    repo = ChatRepository(open_database(database_url))
    conv = repo.create_conversation("Keep me")
    repo.add_message(conv.id, "user", "hello")
    repo2 = ChatRepository(open_database(database_url))
    assert [c.title for c in repo2.list_conversations()] == ["Keep me"]
    assert [m.content for m in repo2.messages(conv.id)] == ["hello"]


def test_conversation_crud_and_order(repo: ChatRepository) -> None:
    a = repo.create_conversation("A")
    b = repo.create_conversation("B")
    repo.add_message(a.id, "user", "bump a")  # a is now the most recently updated
    assert [c.title for c in repo.list_conversations()] == ["A", "B"]
    repo.rename_conversation(b.id, "  Renamed  ")
    assert repo.get_conversation(b.id).title == "Renamed"
    repo.delete_conversation(a.id)
    assert [c.id for c in repo.list_conversations()] == [b.id]
    with pytest.raises(NotFound):
        repo.messages(a.id)


def test_delete_cascades_to_messages(repo: ChatRepository, database_url: str) -> None:
    conv = repo.create_conversation()
    repo.add_message(conv.id, "user", "x")
    repo.delete_conversation(conv.id)
    with create_engine(database_url).connect() as db:
        assert db.execute(text("select count(*) from messages")).scalar() == 0
        assert db.execute(text("select count(*) from message_versions")).scalar() == 0


def test_turn_and_streaming_updates(repo: ChatRepository) -> None:
    conv = repo.create_conversation()
    ids = repo.start_turn(conv.id, "question")
    msgs = repo.messages(conv.id)
    assert [(m.role, m.content, m.complete) for m in msgs] == [("user", "question", True), ("assistant", "", False)]
    repo.update_version(ids.reply_version_id, "partial", complete=False)
    assert repo.messages(conv.id)[-1].content == "partial"
    repo.update_version(ids.reply_version_id, "partial answer", complete=True)
    last = repo.messages(conv.id)[-1]
    assert (last.content, last.complete, last.version_count) == ("partial answer", True, 1)


def test_users_cannot_see_each_others_chats(repo: ChatRepository) -> None:
    conv = repo.create_conversation("mine", user_id=None)
    with pytest.raises(NotFound):
        repo.get_conversation(conv.id, user_id=42)
    assert repo.list_conversations(user_id=42) == []


def test_unwritable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(StorageError, match="Cannot create the data dir"):
        ensure_data_dir(blocker / "sub")


def test_corrupt_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "webui.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="Cannot open the database"):
        open_database(sqlite_url(tmp_path))


def test_bad_database_url_is_a_clear_error() -> None:
    with pytest.raises(StorageError, match="Invalid --database-url"):
        open_database("nosuchdialect://x")


def test_a_start_waits_for_another_process_holding_the_sqlite_lock_past_busy_timeout(tmp_path: Path) -> None:
    """Another process holds the write lock longer than SQLite's busy timeout (5 s), as one instance
    migrating under load does while a second starts: the second waits and opens, it does not exit."""
    import sqlite3
    import threading

    url = sqlite_url(tmp_path)
    open_database(url).dispose()  # the file exists, migrated
    holder = sqlite3.connect(tmp_path / "webui.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    released = threading.Timer(6.5, holder.rollback)
    released.start()
    try:
        started = time.monotonic()
        engine = open_database(url)
        waited = time.monotonic() - started
    finally:
        released.join()
        holder.close()
    assert waited >= 6.0  # it really waited past the busy timeout, then opened
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM schema_version").scalar()
    engine.dispose()
