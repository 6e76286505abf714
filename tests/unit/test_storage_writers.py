"""Several writers on one database, and text every database must take.

Each writer opens its own engine, as separate app processes do. Run here on SQLite; the same tests
run on PostgreSQL in tests/integration/test_postgres.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from webui.storage.db import open_database
from webui.storage.repository import ChatRepository

WRITERS = 4
TURNS = 12


def run_together(workers: list[Callable[[], None]]) -> list[BaseException]:
    """Start the workers at the same moment (a barrier), wait for all; the errors they raised."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def run(work: Callable[[], None]) -> None:
        try:
            barrier.wait(timeout=30)
            work()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def test_writers_on_one_chat_lose_no_turn_and_no_setting(database_url: str) -> None:
    repos = [ChatRepository(open_database(database_url)) for _ in range(WRITERS)]
    conv = repos[0].create_conversation("shared")

    def writer(n: int) -> Callable[[], None]:
        def work() -> None:
            for turn in range(TURNS):
                ids = repos[n].start_turn(conv.id, f"w{n} t{turn}")
                repos[n].update_settings(conv.id, {f"w{n}": turn})
                repos[n].update_version(ids.reply_version_id, f"reply w{n} t{turn}", complete=True)

        return work

    assert run_together([writer(n) for n in range(WRITERS)]) == []
    msgs = repos[0].messages(conv.id)
    assert [m.position for m in msgs] == list(range(2 * WRITERS * TURNS))
    # start_turn appends the user's message and its reply in one transaction: they stay adjacent
    pairs = [(msgs[i], msgs[i + 1]) for i in range(0, len(msgs), 2)]
    assert all(u.role == "user" and r.role == "assistant" and r.content == f"reply {u.content}" for u, r in pairs)
    assert sorted(u.content for u, _ in pairs) == sorted(f"w{n} t{t}" for n in range(WRITERS) for t in range(TURNS))
    assert repos[0].get_conversation(conv.id).settings == {f"w{n}": TURNS - 1 for n in range(WRITERS)}


def test_writers_regenerating_one_message_keep_every_version(database_url: str) -> None:
    repos = [ChatRepository(open_database(database_url)) for _ in range(WRITERS)]
    conv = repos[0].create_conversation()
    reply = repos[0].start_turn(conv.id, "q")

    def writer(n: int) -> Callable[[], None]:
        def work() -> None:
            for turn in range(TURNS // 2):
                version = repos[n].add_version(reply.reply_message_id)
                repos[n].update_version(version, f"w{n} v{turn}", complete=True)

        return work

    assert run_together([writer(n) for n in range(WRITERS)]) == []
    last = repos[0].messages(conv.id)[-1]
    assert last.version_count == 1 + WRITERS * (TURNS // 2)
    contents = [v for v in repos[0].export_conversation(conv.id)["messages"][-1]["versions"]]
    assert sorted(contents[1:]) == sorted(f"w{n} v{t}" for n in range(WRITERS) for t in range(TURNS // 2))


def test_first_use_of_an_account_from_several_writers_makes_one_user(database_url: str) -> None:
    repos = [ChatRepository(open_database(database_url)) for _ in range(WRITERS)]
    ids: list[int] = []
    assert run_together([lambda r=r: ids.append(r.ensure_user("alice")) for r in repos]) == []
    assert len(ids) == WRITERS and len(set(ids)) == 1


def test_nul_characters_and_over_long_titles_are_stored_the_same_everywhere(repo: ChatRepository) -> None:
    # PostgreSQL text cannot hold NUL (SQLite can): it is stored as U+FFFD on every database
    conv = repo.create_conversation("a\x00b")
    ids = repo.start_turn(conv.id, "user\x00text")
    repo.update_version(ids.reply_version_id, "reply\x00", complete=True)
    assert repo.get_conversation(conv.id).title == "a\ufffdb"
    assert [m.content for m in repo.messages(conv.id)] == ["user\ufffdtext", "reply\ufffd"]
    repo.edit_message(ids.reply_message_id, "edited\x00")
    version = repo.add_version(ids.reply_message_id, content="\x00new")
    repo.update_version(version, "\x00newer", complete=True)
    assert repo.messages(conv.id)[-1].content == "\ufffdnewer"
    # titles are VARCHAR(300): PostgreSQL refuses longer ones (SQLite stores them): cut to fit
    repo.rename_conversation(conv.id, "x" * 400)
    assert repo.get_conversation(conv.id).title == "x" * 300
    assert repo.create_conversation("y" * 301).title == "y" * 300
