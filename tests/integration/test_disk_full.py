"""A full disk under the real app: the data dir lives on a small tmpfs that a filler file fills up
while a reply streams. The user is told (the API: a 507 JSON error, in the stream once its headers
are sent; the UI: the live reply's error and a warning toast), the app keeps serving what needs no
writing (reading chats, unsaved API replies), the database stays intact, and once the filler is
deleted the next reply is saved again.

Mounting a tmpfs needs root: skipped elsewhere, but a failure under CI (which runs as root)."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.gradio_session import GradioSession
from tests.support.server_utils import RunningApp, start_app
from webui.chat.reply_writer import REPLY_NOT_SAVED, TURN_NOT_SAVED
from webui.storage.db import open_database, sqlite_url
from webui.storage.repository import ChatRepository

pytestmark = pytest.mark.slow
TMPFS_SIZE = "16m"
LONG = "Write a long story about a lighthouse keeper. Use many paragraphs."


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI runs as root and must be able to mount a tmpfs: {reason}")
    pytest.skip(f"needs a small tmpfs for the data dir: {reason}")


@pytest.fixture(scope="module")
def small_disk() -> Iterator[Path]:
    """A 16 MiB tmpfs, mounted for this module (root only)."""
    if os.geteuid() != 0:
        _unavailable("not root (mount -t tmpfs needs CAP_SYS_ADMIN)")
    mount_point = Path(tempfile.mkdtemp(prefix="webui-full-disk-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        mount_point.rmdir()
        _unavailable(f"mount -t tmpfs failed: {done.stderr.strip() or done.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        mount_point.rmdir()


@pytest.fixture(scope="module")
def app(small_disk: Path) -> Iterator[RunningApp]:
    running = start_app(small_disk)  # the data dir is the tmpfs itself; the app's log goes beside it
    try:
        yield running
    finally:
        running.stop()


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte with one file; returns it (delete it to free the space)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as fh:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return filler


def integrity(app: RunningApp) -> str:
    conn = sqlite3.connect(app.data_dir / "webui.db")
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def stored_messages(app: RunningApp, conv_id: int) -> list[tuple[str, str, bool]]:
    engine = open_database(sqlite_url(app.data_dir))
    try:
        return [(m.role, m.content, m.complete) for m in ChatRepository(engine).messages(conv_id)]
    finally:
        engine.dispose()


def model(app: RunningApp) -> str:
    return httpx.get(f"{app.url}/v1/models").json()["data"][0]["id"]


def chat_body(app: RunningApp, text: str, **extra: object) -> dict[str, object]:
    return {"model": model(app), "messages": [{"role": "user", "content": text}], "max_tokens": 16, **extra}


def stream_filling_midway(app: RunningApp, disk: Path) -> tuple[int, str, list[dict]]:
    """A saved, streamed API reply during which the disk fills: (chat id, text received, error chunks)."""
    body = chat_body(app, LONG, stream=True, save=True, max_tokens=160, ban_eos_token=True)
    text, errors = "", []
    with httpx.stream("POST", f"{app.url}/v1/chat/completions", json=body, timeout=180) as response:
        assert response.status_code == 200
        conv_id = int(response.headers["X-Conversation-Id"])
        for line in response.iter_lines():
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            if "error" in chunk:
                errors.append(chunk["error"])
                continue
            text += chunk["choices"][0]["delta"].get("content") or ""
            if text and not (disk / "filler").exists():
                fill(disk)
    return conv_id, text, errors


def ui_send(app: RunningApp, conv_id: int, text: str, max_tokens: int, on_text: object = None) -> tuple[list[dict],
                                                                                                        list[dict]]:
    """Send ``text`` in chat ``conv_id`` as the page does: (the live reply's events, after_turn's messages)."""
    ui = GradioSession(app.url, f"full-disk-{conv_id}-{len(text)}")
    ui.page_load()
    ui.run("open_chat", {"chat-list": conv_id})
    values = {"chat-input": text, "param-max_new_tokens": max_tokens, "param-ban_eos_token": True}
    token = str(ui.output("prepare", "live-token", ui.run("prepare", values)))
    events = []
    for _, event in ui.read_live_reply(token):
        events.append(event)
        if "html" in event and callable(on_text):
            on_text()
    return events, ui.run("after_turn", {"live-token": token})


def warnings(messages: list[dict]) -> list[str]:
    return [m["log"] for m in messages if m.get("msg") == "log" and m.get("level") == "warning"]


def test_a_full_disk_is_reported_serving_goes_on_and_saving_resumes(app: RunningApp, small_disk: Path) -> None:
    # Space: a saved turn, the baseline that must survive.
    saved = httpx.post(f"{app.url}/v1/chat/completions", json=chat_body(app, "Hello!", save=True), timeout=120)
    assert saved.status_code == 200
    kept_id = int(saved.headers["X-Conversation-Id"])
    kept = stored_messages(app, kept_id)
    assert [r for r, _, _ in kept] == ["user", "assistant"] and kept[-1][2]

    # The disk fills while an API reply streams: the client gets the whole reply, then the error.
    conv_id, text, errors = stream_filling_midway(app, small_disk)
    assert len(text) > 100, text
    assert [e["code"] for e in errors] == ["insufficient_storage"]
    assert errors[0]["message"] == REPLY_NOT_SAVED
    user, reply = stored_messages(app, conv_id)
    assert user[1] == LONG and len(reply[1]) < len(text) and text.startswith(reply[1])  # kept as far as saved

    # Still full: saving is refused with 507, before anything streams ...
    refused = httpx.post(f"{app.url}/v1/chat/completions", json=chat_body(app, "Again", save=True), timeout=60)
    assert refused.status_code == 507
    assert refused.json()["error"] == {"message": TURN_NOT_SAVED, "type": "server_error", "param": None,
                                       "code": "insufficient_storage"}
    streamed = httpx.post(f"{app.url}/v1/chat/completions",
                          json=chat_body(app, "Again", save=True, stream=True), timeout=60)
    assert streamed.status_code == 507 and streamed.json()["error"]["code"] == "insufficient_storage"
    # ... while unsaved replies are still answered, and chats still read.
    unsaved = httpx.post(f"{app.url}/v1/chat/completions", json=chat_body(app, "Hi", save=False), timeout=120)
    assert unsaved.status_code == 200 and unsaved.json()["choices"][0]["message"]["content"]
    ollama_body = {"model": model(app), "stream": False, "options": {"num_predict": 8},
                   "messages": [{"role": "user", "content": "Hi"}]}
    ollama = httpx.post(f"{app.url}/api/chat", json=ollama_body, timeout=120)
    assert ollama.status_code == 200 and ollama.json()["message"]["content"]
    ui = GradioSession(app.url, "full-disk-reader")
    ui.page_load()
    shown = ui.output("open_chat", "chatbot", ui.run("open_chat", {"chat-list": kept_id}))
    assert len(shown) == 2  # type: ignore[arg-type]

    # The UI, still full: the live reply says the message could not be saved, and a toast says it too.
    events, after = ui_send(app, kept_id, "Are you there?", 16)
    assert {"error": TURN_NOT_SAVED} in events and events[-1] == {"done": True}
    assert warnings(after) == [TURN_NOT_SAVED]
    assert stored_messages(app, kept_id) == kept
    assert integrity(app) == "ok"

    # Space returns: the next turns are saved, by the API and the UI.
    (small_disk / "filler").unlink()
    again = httpx.post(f"{app.url}/v1/chat/completions", json=chat_body(app, "Once more", save=True), timeout=120)
    assert again.status_code == 200
    answer = again.json()["choices"][0]["message"]["content"]
    assert stored_messages(app, int(again.headers["X-Conversation-Id"]))[-1] == ("assistant", answer, True)
    events, after = ui_send(app, kept_id, "Are you there?", 16)
    assert not any("error" in e for e in events) and warnings(after) == []
    assert [r for r, _, c in stored_messages(app, kept_id) if c] == ["user", "assistant", "user", "assistant"]

    # The disk fills while a UI reply streams: it is shown to its end, then the error and the toast.
    events, after = ui_send(app, kept_id, LONG, 160,
                            on_text=lambda: (small_disk / "filler").exists() or fill(small_disk))
    assert {"error": REPLY_NOT_SAVED} in events and sum("html" in e for e in events) > 3
    assert warnings(after) == [REPLY_NOT_SAVED]
    (small_disk / "filler").unlink()
    events, after = ui_send(app, kept_id, "Still there?", 16)
    assert not any("error" in e for e in events) and warnings(after) == []
    assert stored_messages(app, kept_id)[-1][2]
    app.stop()
    assert integrity(app) == "ok"


def test_starting_on_a_full_disk_says_so_and_not_that_the_file_is_corrupt(small_disk: Path) -> None:
    data_dir = small_disk
    assert (data_dir / "webui.db").exists()  # left by the test above, its app stopped
    filler = fill(small_disk)
    try:
        with pytest.raises(RuntimeError) as caught:
            start_app(data_dir, timeout=60)
        assert "the disk holding it is full" in str(caught.value)
        assert "corrupt" not in str(caught.value)
    finally:
        filler.unlink()
    app = start_app(data_dir)  # space is back: it starts, with the chats
    try:
        assert integrity(app) == "ok"
        assert httpx.post(f"{app.url}/v1/chat/completions", json=chat_body(app, "Back?", save=True),
                          timeout=120).status_code == 200
    finally:
        app.stop()
