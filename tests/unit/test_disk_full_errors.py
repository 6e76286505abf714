"""A full disk is one clear DiskFullError wherever it surfaces (SQLite, JSON files), a reply that
streams while the disk fills keeps streaming and says it was not saved, and the API maps it to 507.
The real thing (a tmpfs that fills up under a running app) is tests/integration/test_disk_full.py."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from webui import atomic_file
from webui.api.encoders import _failure
from webui.api.errors import user_error
from webui.atomic_file import write_json_atomic
from webui.chat import service as service_mod
from webui.chat.reply_writer import REPLY_NOT_SAVED, TURN_NOT_SAVED
from webui.errors import DiskFullError, StorageError, UserFacingError
from webui.generation.params import GenerationParams
from webui.generation.presets import PresetLibrary
from webui.storage.db import open_database, sqlite_url
from webui.storage.failures import is_disk_full
from webui.storage.repository import ChatRepository


def capped_repo(tmp_path: Path) -> tuple[ChatRepository, list[int]]:
    """A repository whose database may not grow past ``cap[0]`` pages (0: no cap): SQLite then
    fails exactly as on a full disk (SQLITE_FULL, "database or disk is full")."""
    engine = open_database(sqlite_url(tmp_path))
    cap = [0]

    @event.listens_for(engine, "begin")
    def _cap(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql(f"PRAGMA max_page_count={cap[0] or 1073741823}")

    return ChatRepository(engine), cap


def test_sqlite_disk_full_becomes_a_clear_storage_error(tmp_path: Path) -> None:
    repo, cap = capped_repo(tmp_path)
    conv = repo.create_conversation("kept")
    ids = repo.start_turn(conv.id, "hello")
    cap[0] = 1  # no room for a single new page
    with pytest.raises(DiskFullError, match="The disk is full") as caught:
        repo.update_version(ids.reply_version_id, "x" * 20000, complete=True)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert "database or disk is full" in str(caught.value.__cause__)
    assert [m.content for m in repo.messages(conv.id)] == ["hello", ""]  # still readable, nothing half-written
    cap[0] = 0
    repo.update_version(ids.reply_version_id, "x" * 20000, complete=True)  # space is back: saved
    assert repo.messages(conv.id)[-1].content == "x" * 20000


def test_is_disk_full_recognises_each_form() -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert is_disk_full(sqlite3.OperationalError("database or disk is full"))
    wrapped = RuntimeError("outer")
    wrapped.__cause__ = OSError(errno.ENOSPC, "full")
    assert is_disk_full(wrapped)
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(sqlite3.OperationalError("database is locked"))
    assert not is_disk_full(None)


class FullFile:
    """A file whose writes fail as on a full disk (or with ``err``)."""

    def __init__(self, fh: Any, err: int = errno.ENOSPC) -> None:
        self.fh = fh
        self.err = err

    def __enter__(self) -> FullFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()

    def write(self, data: bytes) -> int:
        raise OSError(self.err, os.strerror(self.err))


def test_a_file_write_on_a_full_disk_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "settings.json"
    write_json_atomic(path, {"old": 1})
    real_fdopen = os.fdopen
    monkeypatch.setattr(atomic_file.os, "fdopen", lambda fd, mode: FullFile(real_fdopen(fd, mode)))
    with pytest.raises(DiskFullError, match=f"The disk is full: {path} could not be saved"):
        write_json_atomic(path, {"new": 2})
    assert json.loads(path.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]  # no temp file left behind
    monkeypatch.setattr(atomic_file.os, "fdopen", lambda fd, mode: FullFile(real_fdopen(fd, mode), errno.EIO))
    with pytest.raises(OSError) as caught:  # other failures stay what they are
        write_json_atomic(path, {"new": 2})
    assert not isinstance(caught.value, DiskFullError) and caught.value.errno == errno.EIO


def test_a_preset_saved_on_a_full_disk_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    presets = PresetLibrary([tmp_path / "presets"])
    presets.save("Mine", GenerationParams(temperature=0.3))
    real_fdopen = os.fdopen
    monkeypatch.setattr(atomic_file.os, "fdopen", lambda fd, mode: FullFile(real_fdopen(fd, mode)))
    with pytest.raises(DiskFullError, match="The disk is full"):
        presets.save("Mine", GenerationParams(temperature=0.9))
    monkeypatch.undo()
    assert presets.load("Mine").temperature == 0.3


class FillingRepo(ChatRepository):
    """A repository whose reply saves fail (disk full) while ``full`` is set."""

    full = False

    def update_version(self, version_id: int, content: str, *, complete: bool,  # type: ignore[override]
                       context_shifted: bool = False) -> None:
        if self.full:
            raise DiskFullError("The disk is full: the change could not be saved to the database.")
        super().update_version(version_id, content, complete=complete, context_shifted=context_shifted)


@pytest.fixture
def filling(make_engine, tmp_path: Path, characters, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(service_mod, "FLUSH_SECONDS", 0.02)
    repo = FillingRepo(open_database(sqlite_url(tmp_path)))
    return repo, service_mod.ChatService(make_engine(tokens=[f"w{i} " for i in range(60)], delay=0.005), repo,
                                         characters)


def test_a_reply_streams_on_when_the_disk_fills_and_says_it_was_not_saved(filling) -> None:  # type: ignore[no-untyped-def]
    repo, chat = filling
    conv = chat.new_conversation("Assistant")
    texts = []
    with pytest.raises(DiskFullError) as caught:
        for p in chat.send(conv.id, "go", GenerationParams(), session_key="k"):
            texts.append(p.text)
            if len(p.text) > 40:
                repo.full = True
    assert str(caught.value) == REPLY_NOT_SAVED
    assert texts[-1].startswith("w0 w1") and texts[-1].rstrip().endswith("w59")  # the reader got it all
    stored = repo.messages(conv.id)[-1]
    assert 0 < len(stored.content) < len(texts[-1]) and not stored.complete  # as far as it was saved
    assert not chat.stop("k")  # no longer tracked as running


def test_saving_resumes_by_itself_when_space_returns(filling) -> None:  # type: ignore[no-untyped-def]
    repo, chat = filling
    conv = chat.new_conversation("Assistant")
    for p in chat.send(conv.id, "go", GenerationParams()):
        repo.full = 20 < len(p.text) < 120  # full for a while in the middle
    assert p.done
    stored = repo.messages(conv.id)[-1]
    assert stored.complete and stored.content == p.text


def test_a_turn_that_cannot_be_stored_says_so_before_generating(filling) -> None:  # type: ignore[no-untyped-def]
    repo, chat = filling
    conv = chat.new_conversation("Assistant")

    def full(*args: object, **kwargs: object) -> None:
        raise DiskFullError("full")

    repo.start_turn = full  # type: ignore[method-assign]
    with pytest.raises(DiskFullError, match="your message could not be saved") as caught:
        next(chat.send(conv.id, "go", GenerationParams()))
    assert str(caught.value) == TURN_NOT_SAVED
    assert chat.engine.model.prompts == []  # nothing was generated


def test_the_api_answers_a_full_disk_with_507() -> None:
    full = user_error(DiskFullError(REPLY_NOT_SAVED))
    assert (full.status, full.code, full.type) == (507, "insufficient_storage", "server_error")
    assert full.body()["error"]["message"] == REPLY_NOT_SAVED
    assert user_error(StorageError("locked")).status == 503
    assert user_error(UserFacingError("bad")).status == 400
    assert _failure(DiskFullError(REPLY_NOT_SAVED))["error"]["code"] == "insufficient_storage"  # mid-stream
    assert _failure(RuntimeError("boom"))["error"]["code"] == "generation_error"
