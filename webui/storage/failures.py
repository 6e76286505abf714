"""A full disk, recognised wherever it surfaces, becomes one clear :class:`DiskFullError`.

SQLite reports it as ``database or disk is full`` (SQLITE_FULL), PostgreSQL as SQLSTATE 53100,
plain file writes as ``OSError`` ENOSPC (or EDQUOT, a quota). ``open_database`` installs
:func:`translate_disk_full` on the engine, so every repository method raises ``DiskFullError``
with a message fit for the user instead of a driver error; the API answers it with 507 and the UI
with a warning (see docs/user-guide.md, "What survives a crash or a full disk").
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from webui.errors import DiskFullError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine, ExceptionContext

SQLITE_FULL = 13
PG_DISK_FULL = "53100"
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
LOW_SPACE_BYTES = 1 << 20  # less free space than this: SQLite cannot even create its WAL index

DB_DISK_FULL_MESSAGE = (
    "The disk is full: the change could not be saved to the database. "
    "Chats already saved are safe and can still be read; free some space and try again."
)


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the disk or a quota is full."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFullError):
            return True
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        if isinstance(exc, sqlite3.Error) and (
            getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL or "database or disk is full" in str(exc)
        ):
            return True
        if (getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)) == PG_DISK_FULL:
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return False


def translate_disk_full(context: ExceptionContext) -> DiskFullError | None:
    """SQLAlchemy ``handle_error`` listener: a driver's disk-full error becomes a DiskFullError
    (raised by SQLAlchemy in its place, chained to the original); anything else is left alone."""
    if is_disk_full(context.original_exception):
        error = DiskFullError(DB_DISK_FULL_MESSAGE)
        error.__cause__ = context.original_exception
        return error
    return None


def file_disk_full(exc: OSError, path: object) -> DiskFullError:
    """The DiskFullError for a file that could not be written for lack of space."""
    error = DiskFullError(
        f"The disk is full: {path} could not be saved (the previous version is kept). "
        "Free some space and try again."
    )
    error.__cause__ = exc
    return error


def open_failure_on_full_disk(engine: Engine, exc: BaseException) -> DiskFullError | None:
    """Why opening the database failed, when the cause is a full disk: SQLite then often says only
    "disk I/O error" (it cannot create its -wal/-shm files), which must not read as a corrupt file."""
    where = engine.url.render_as_string(hide_password=True)
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    low = False
    if database and database != ":memory:":
        try:
            low = shutil.disk_usage(Path(database).resolve().parent).free < LOW_SPACE_BYTES
        except OSError:
            low = False
    if not (low or is_disk_full(exc)):
        return None
    error = DiskFullError(
        f"Cannot open the database at {where}: the disk holding it is full. Your chats in it are safe; "
        "free some space and start again."
    )
    error.__cause__ = exc
    return error
