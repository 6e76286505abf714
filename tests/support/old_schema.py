"""A SQLite database as an older version of the app left it: migrated up to (not including) one
migration, holding one chat with one reply, for tests of what that migration does to existing data."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from webui.storage.migrations import MIGRATIONS


def database_before(url: str, migration: str, reply: str) -> None:
    """Create ``url``'s schema as it was before the migration named ``migration`` (e.g.
    ``_m004_context_shifted``), with chat 1 "Old" holding one complete reply ``reply`` (version 1)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
        op = Operations(MigrationContext.configure(conn))
        before = [m.__name__ for m in MIGRATIONS].index(migration)
        for step in MIGRATIONS[:before]:
            step(op)
        conn.execute(sa.text(f"INSERT INTO schema_version VALUES ({before})"))
        conn.execute(sa.text("INSERT INTO conversations VALUES (1, NULL, 'Old', '', '{}', '2025-01-01', '2025-01-01')"))
        conn.execute(sa.text("INSERT INTO messages VALUES (1, 1, 0, 'assistant', 0, '2025-01-01')"))
        conn.execute(sa.text("INSERT INTO message_versions (id, message_id, idx, content, complete, created_at, "
                             "updated_at) VALUES (1, 1, 0, :reply, 1, '2025-01-01', '2025-01-01')"), {"reply": reply})
    engine.dispose()
