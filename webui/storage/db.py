"""Opening the database: data dir checks, SQLite pragmas (WAL), migrations."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from webui.errors import DiskFullError, StorageError
from webui.storage.failures import open_failure_on_full_disk, translate_disk_full
from webui.storage.migrations import migrate


def ensure_data_dir(data_dir: Path) -> Path:
    """Create the data dir if needed and make sure we can write there."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"Cannot create the data dir {data_dir}: {exc.strerror or exc}. "
            "Choose another with --data-dir or WEBUI_DATA_DIR."
        ) from exc
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise StorageError(
            f"The data dir {data_dir} is not writable. Fix its permissions or choose another with --data-dir."
        )
    return data_dir


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'webui.db'}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=5000")  # first: switching a new file to WAL waits for another process
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


# pg_advisory_xact_lock key held while migrating ("webuimig"); any constant shared by all instances.
MIGRATION_LOCK_KEY = 0x7765627569_6D6967


def lock_for_migrations(conn: Connection) -> None:
    """Hold the database's migration lock until ``conn``'s transaction ends.

    Instances started together on one database then migrate one after the other: the first applies
    the migrations, the next finds the schema current. PostgreSQL: a transaction-level advisory lock
    (its DDL is transactional, so the whole migration commits or rolls back as one). SQLite: the
    write lock, taken up front (``BEGIN IMMEDIATE``), so the version check and the DDL are one
    transaction; a second process waits for it (``busy_timeout``).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


SQLITE_OPEN_WAIT_SECONDS = 60.0  # how long a start waits for another process's migration or WAL switch


def _migrate_when_free(engine: Engine) -> None:
    """Migrate under the lock. On SQLite, "database is locked" is retried for a while: a process
    switching a new file to WAL, or migrating it, can answer busy without SQLite's busy handler being
    called (two instances started at once on one file, on a loaded machine, saw this)."""
    deadline = time.monotonic() + SQLITE_OPEN_WAIT_SECONDS
    delay = 0.05
    while True:
        try:
            with engine.begin() as conn:
                lock_for_migrations(conn)
                migrate(conn)
            return
        except OperationalError as exc:
            locked = engine.dialect.name == "sqlite" and "database is locked" in str(exc.orig)
            if not locked or time.monotonic() + delay > deadline:
                raise
            engine.dispose()  # a connection that saw the file mid-switch is not reused
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def open_database(url: str) -> Engine:
    """Create the SQLAlchemy engine and bring the schema up to date."""
    try:
        engine = create_engine(url)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StorageError(f"Invalid --database-url {url!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    # A full disk becomes one clear DiskFullError (webui/storage/failures.py), whichever call hits it.
    event.listen(engine, "handle_error", translate_disk_full, retval=True)
    try:
        _migrate_when_free(engine)
    except (SQLAlchemyError, DiskFullError) as exc:
        engine.dispose()
        full = open_failure_on_full_disk(engine, exc)
        if full is not None:
            raise full from exc
        detail = str(getattr(exc, "orig", exc))
        raise StorageError(
            f"Cannot open the database at {engine.url.render_as_string(hide_password=True)}: {detail}. "
            "If the file is corrupt, move it away (your chats are in it) and restart; "
            "or point --data-dir / --database-url elsewhere."
        ) from exc
    except RuntimeError as exc:
        engine.dispose()
        raise StorageError(str(exc)) from exc
    return engine
