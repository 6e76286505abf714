"""A fresh PostgreSQL database per test, on the server named by ``WEBUI_TEST_POSTGRES_URL``.

``scripts/test_postgres.sh start`` starts a throwaway server and prints that variable; ``.ci/run``
does it before the tests. Without it the PostgreSQL tests fail under CI (``CI`` set), so CI cannot
pass by skipping them, and are skipped elsewhere with how to turn them on.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_URL_ENV = "WEBUI_TEST_POSTGRES_URL"


def postgres_server_url() -> str:
    """The server URL from the environment; otherwise fail (under CI) or skip (elsewhere)."""
    url = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if url:
        return url
    message = (
        f"{POSTGRES_URL_ENV} is not set, so there is no PostgreSQL to test against: run "
        f'`eval "$(bash scripts/test_postgres.sh start)"` first (see docs/testing.md)'
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty database on the test server, yield its URL, drop it afterwards.

    The drop uses ``WITH (FORCE)``, so connections still open in engines the test left behind
    (or in app processes it started) do not keep it alive.
    """
    server = make_url(postgres_server_url())
    name = f"webui_t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
