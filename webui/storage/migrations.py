"""Versioned schema migrations, applied in order at start-up.

Each migration is a function taking alembic ``Operations`` (portable DDL, no env.py needed);
the applied version is kept in the ``schema_version`` table. Append new migrations; never
edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.engine import Connection


def _m001_initial(op: Operations) -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("character", sa.String(200), nullable=False),
        sa.Column("settings_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_conversations_user_id", "conversations", ["user_id"])
    op.create_index("ix_conversations_updated_at", "conversations", ["updated_at"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("active_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_messages_conversation_id", "messages", ["conversation_id"])
    op.create_table(
        "message_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("complete", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_message_versions_message_id", "message_versions", ["message_id"])


def _m002_personas(op: Operations) -> None:
    op.create_table(
        "personas",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("avatar", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_personas_user_id", "personas", ["user_id"])


def _m003_notebook_prompts(op: Operations) -> None:
    op.create_table(
        "notebook_prompts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_notebook_prompts_user_id", "notebook_prompts", ["user_id"])


def _m004_context_shifted(op: Operations) -> None:
    # a reply generated from a shifted KV cache (webui/engine/llama_context.py): the UI marks it
    op.add_column("message_versions",
                  sa.Column("context_shifted", sa.Boolean, nullable=False, server_default=sa.false()))


def _m005_message_display(op: Operations) -> None:
    # what the chat draws for a reply when an output_modifier written for text-generation-webui
    # changed it (HTML, sanitized when drawn); NULL: the chat draws ``content``
    op.add_column("message_versions", sa.Column("display", sa.Text, nullable=True))


MIGRATIONS: list[Callable[[Operations], None]] = [
    _m001_initial, _m002_personas, _m003_notebook_prompts, _m004_context_shifted, _m005_message_display,
]

_version_table = sa.Table(
    "schema_version", sa.MetaData(), sa.Column("version", sa.Integer, nullable=False)
)


def current_version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(sa.select(sa.func.max(_version_table.c.version))).scalar() or 0)


def migrate(conn: Connection) -> int:
    """Apply every migration newer than the stored version; return the new version."""
    version = current_version(conn)
    if version == 0 and not sa.inspect(conn).has_table("schema_version"):
        _version_table.create(conn)
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"The database is at schema version {version}, newer than this app knows ({len(MIGRATIONS)}). "
            "Upgrade the app, or use another --data-dir."
        )
    op = Operations(MigrationContext.configure(conn))
    for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
        migration(op)
        conn.execute(_version_table.delete())
        conn.execute(_version_table.insert().values(version=number))
    return len(MIGRATIONS)
