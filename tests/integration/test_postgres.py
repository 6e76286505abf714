"""The storage on a real PostgreSQL, and several app processes sharing one database.

The storage, writer, chat-service and chat-feature tests of tests/unit run here again with the
``database_url`` fixture pointing at a fresh PostgreSQL database (tests/support/postgres.py).
The multi-process tests run on both databases: two ``python app.py`` instances started at once on a
fresh database, chatting and saving through the API at the same time, and raw processes racing to
migrate. Without ``WEBUI_TEST_POSTGRES_URL`` the PostgreSQL cases fail under CI and skip elsewhere.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.support.echo_upstream import echo_upstream
from tests.support.postgres import fresh_postgres_database
from tests.support.server_utils import RunningApp, start_app
from tests.unit import test_chat_features as chat_features
from tests.unit import test_chat_service as chat_service_tests
from tests.unit import test_storage as storage
from tests.unit import test_storage_writers as writers
from webui.config import REPO_ROOT
from webui.storage.db import open_database, sqlite_url
from webui.storage.migrations import MIGRATIONS, current_version
from webui.storage.repository import ChatRepository


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for each test (dropped afterwards)."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One new database for several processes: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        with fresh_postgres_database() as url:
            yield url


# -- the unit tests of storage and chat, again on PostgreSQL ----------------------------------
svc = chat_features.svc  # the fixture those tests take; it opens ``database_url``

test_migrations_build_exactly_the_orm_schema = storage.test_migrations_build_exactly_the_orm_schema
test_reopening_keeps_data_and_does_not_remigrate = storage.test_reopening_keeps_data_and_does_not_remigrate
test_conversation_crud_and_order = storage.test_conversation_crud_and_order
test_delete_cascades_to_messages = storage.test_delete_cascades_to_messages
test_turn_and_streaming_updates = storage.test_turn_and_streaming_updates
test_users_cannot_see_each_others_chats = storage.test_users_cannot_see_each_others_chats

test_writers_on_one_chat_lose_no_turn_and_no_setting = writers.test_writers_on_one_chat_lose_no_turn_and_no_setting
test_writers_regenerating_one_message_keep_every_version = (
    writers.test_writers_regenerating_one_message_keep_every_version
)
test_first_use_of_an_account_from_several_writers_makes_one_user = (
    writers.test_first_use_of_an_account_from_several_writers_makes_one_user
)
test_nul_characters_and_over_long_titles_are_stored_the_same_everywhere = (
    writers.test_nul_characters_and_over_long_titles_are_stored_the_same_everywhere
)

test_send_streams_and_persists_the_turn = chat_service_tests.test_send_streams_and_persists_the_turn
test_prompt_has_character_system_message_and_history = (
    chat_service_tests.test_prompt_has_character_system_message_and_history
)
test_reply_is_flushed_while_streaming = chat_service_tests.test_reply_is_flushed_while_streaming
test_stop_keeps_the_partial_reply = chat_service_tests.test_stop_keeps_the_partial_reply
test_long_chat_is_truncated_end_to_end = chat_service_tests.test_long_chat_is_truncated_end_to_end

test_regenerate_keeps_versions_and_switching_changes_the_prompt = (
    chat_features.test_regenerate_keeps_versions_and_switching_changes_the_prompt
)
test_continue_extends_the_same_version_and_start_with_prefixes = (
    chat_features.test_continue_extends_the_same_version_and_start_with_prefixes
)
test_edit_delete_branch_and_search = chat_features.test_edit_delete_branch_and_search
test_export_import_round_trip_with_versions = chat_features.test_export_import_round_trip_with_versions
test_persona_sets_user_name_description_and_avatar_survives = (
    chat_features.test_persona_sets_user_name_description_and_avatar_survives
)


# -- several processes on one database ---------------------------------------------------------
def schema_rows(url: str) -> tuple[int, int]:
    """(schema version, rows in schema_version) of the database at ``url``."""
    engine = open_database(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT count(*) FROM schema_version")).scalar_one()
            return current_version(conn), int(rows)
    finally:
        engine.dispose()


RACER = """
import sys, time
from pathlib import Path
from webui.storage.db import open_database
from webui.storage.migrations import current_version
go = Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
with open_database(sys.argv[1]).connect() as conn:
    print("version", current_version(conn), flush=True)
"""


def test_processes_opening_a_fresh_database_at_once_migrate_it_once(shared_database_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", RACER, shared_database_url, str(go)], cwd=REPO_ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    try:
        for p in procs:  # every process imported everything and waits: then they all open at once
            assert p.stdout is not None and p.stdout.readline().strip() == "ready", p.stderr
        go.touch()
        results = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert out.split() == ["version", str(len(MIGRATIONS))], (out, err)
    assert schema_rows(shared_database_url) == (len(MIGRATIONS), 1)


CLIENTS_PER_INSTANCE = 3
ROUNDS = 4


@dataclass
class Tally:
    """What the API clients did, per instance: requests answered 200, and anything else."""

    ok: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def chat_turn(app: RunningApp, which: int, tally: Tally, content: str, conversation_id: int | None) -> int | None:
    """One saved chat turn through ``app``'s API; the id of the chat it is saved in."""
    body: dict = {"model": "default", "messages": [{"role": "user", "content": content}], "max_tokens": 32}
    if conversation_id is None:
        body["save"] = True
    else:
        body["conversation_id"] = conversation_id
    try:
        r = httpx.post(f"{app.url}/v1/chat/completions", json=body, timeout=120)
    except httpx.HTTPError as exc:
        with tally.lock:
            tally.errors.append(f"instance {which}: {content!r}: {exc!r}")
        return None
    with tally.lock:
        if r.status_code != 200 or r.json()["choices"][0]["message"]["content"] != f"echo: {content}":
            tally.errors.append(f"instance {which}: {content!r}: {r.status_code} {r.text[:300]}")
            return None
        tally.ok[which] += 1
    return int(r.headers["x-conversation-id"])


def start_instances(tmp_path: Path, url: str, upstream: str) -> list[RunningApp]:
    """Two ``python app.py`` on one database, started at the same moment (neither has migrated it)."""
    apps: list[RunningApp | None] = [None, None]
    failures: list[BaseException] = []

    def start(i: int) -> None:
        try:
            apps[i] = start_app(tmp_path / f"instance{i}" / "data", "--model", upstream, "--database-url", url,
                                "--save-api-chats", timeout=180)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        for app in apps:
            if app is not None:
                app.stop()
        raise failures[0]
    return [app for app in apps if app is not None]


def test_two_instances_on_one_database_chat_and_save_at_once(shared_database_url: str, tmp_path: Path) -> None:
    with echo_upstream() as (upstream, upstream_requests):
        apps = start_instances(tmp_path, shared_database_url, upstream)
        try:
            assert schema_rows(shared_database_url) == (len(MIGRATIONS), 1)
            tally = Tally()
            shared = chat_turn(apps[0], 0, tally, "shared start", None)
            assert shared is not None, tally.errors
            own: dict[str, int] = {}
            clients = [f"c{i}" for i in range(2 * CLIENTS_PER_INSTANCE)]

            def client(n: int, name: str) -> None:
                home = n % 2
                for r in range(ROUNDS):
                    # its own chat, each turn through the other instance than the last ...
                    conv = chat_turn(apps[(home + r) % 2], (home + r) % 2, tally, f"{name} t{r}", own.get(name))
                    if conv is None:
                        return
                    own[name] = conv
                    # ... and a turn in the chat every client writes to, through its home instance
                    chat_turn(apps[home], home, tally, f"shared {name} r{r}", shared)

            started = time.monotonic()
            threads = [threading.Thread(target=client, args=(n, name)) for n, name in enumerate(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=300)
            elapsed = time.monotonic() - started
            logs = [app.log() for app in apps]
        finally:
            for app in apps:
                app.stop()

    repo = ChatRepository(open_database(shared_database_url))
    saved_turns = sum(len(repo.messages(c.id)) // 2 for c in repo.list_conversations())
    print(f"\n[{shared_database_url.split(':', 1)[0]}] requests answered per instance: {dict(tally.ok)}; "
          f"errors: {len(tally.errors)}; turns saved: {saved_turns}; upstream requests: {len(upstream_requests)}; "
          f"{elapsed:.1f}s")
    assert tally.errors == []
    assert all("Traceback" not in log for log in logs), "\n".join(logs)
    total = 1 + 2 * len(clients) * ROUNDS
    assert sum(tally.ok.values()) == total and min(tally.ok.values()) >= len(clients) * ROUNDS // 2
    assert saved_turns == total
    for name in clients:  # every turn of every client's chat, in order, each with its own reply
        msgs = repo.messages(own[name])
        expected = [(role, text) for r in range(ROUNDS)
                    for role, text in (("user", f"{name} t{r}"), ("assistant", f"echo: {name} t{r}"))]
        assert [(m.role, m.content) for m in msgs] == expected
        assert all(m.complete for m in msgs)
    shared_msgs = repo.messages(shared)  # written by every client through both instances at once
    assert [m.position for m in shared_msgs] == list(range(len(shared_msgs)))
    pairs = [(shared_msgs[i], shared_msgs[i + 1]) for i in range(0, len(shared_msgs), 2)]
    assert all(u.role == "user" and a.role == "assistant" and a.content == f"echo: {u.content}" for u, a in pairs)
    assert sorted(u.content for u, _ in pairs[1:]) == sorted(
        f"shared {name} r{r}" for name in clients for r in range(ROUNDS)
    )
