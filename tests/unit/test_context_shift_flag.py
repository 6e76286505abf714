"""The stored "generated from a shifted KV cache" mark of a reply version (issue 12): written with the
reply, kept by a continuation, copied by a branch, cleared by an edit; a database from before the
mark existed gains it, unset, with its replies intact. Real SQLite."""

from __future__ import annotations

from pathlib import Path

from tests.support.old_schema import database_before
from webui.storage.db import open_database, sqlite_url
from webui.storage.migrations import MIGRATIONS, current_version
from webui.storage.repository import ChatRepository
from webui.ui.chat_view import versions_value


def test_the_mark_follows_the_version_it_was_written_with(repo: ChatRepository) -> None:
    conv = repo.create_conversation("Harbours")
    turn = repo.start_turn(conv.id, "Which harbour?")
    repo.update_version(turn.reply_version_id, "Harbour", complete=False, context_shifted=True)  # first flush
    repo.update_version(turn.reply_version_id, "Harbour 3.", complete=True)  # a continuation read exactly
    assert repo.messages(conv.id)[-1].context_shifted  # still marked: its first part came from the shift
    second = repo.add_version(turn.reply_message_id)
    repo.update_version(second, "Harbour 5.", complete=True)
    assert versions_value(repo.messages(conv.id)) == "1/1/u,2/2/a"
    repo.set_active_version(turn.reply_message_id, 0)
    assert versions_value(repo.messages(conv.id)) == "1/1/u,1/2/a/s"

    branch = repo.branch_conversation(conv.id, turn.reply_message_id)
    assert [m.context_shifted for m in repo.messages(branch.id)] == [False, True]
    repo.edit_message(turn.reply_message_id, "Harbour 3, I wrote.")
    assert not repo.messages(conv.id)[-1].context_shifted
    assert repo.messages(branch.id)[-1].context_shifted  # the branch's copy is its own


def test_a_database_from_before_the_mark_gains_it_unset(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    database_before(url, "_m004_context_shifted", "An old reply.")  # the schema as it was, with a chat in it
    repo = ChatRepository(open_database(url))
    with repo.engine.connect() as conn:
        assert current_version(conn) == len(MIGRATIONS)
    [old] = repo.messages(1)
    assert old.content == "An old reply." and old.context_shifted is False
