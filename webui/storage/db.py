"""Opening the database: data dir checks, SQLite pragmas (WAL), migrations."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from webui.errors import StorageError
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
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def open_database(url: str) -> Engine:
    """Create the SQLAlchemy engine and bring the schema up to date."""
    try:
        engine = create_engine(url)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StorageError(f"Invalid --database-url {url!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.begin() as conn:
            migrate(conn)
    except SQLAlchemyError as exc:
        engine.dispose()
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
