"""The UI streams diffs, not the whole chat per token (checked on Gradio's own wire protocol)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gradio_session import GradioSession
from tests.server_utils import start_app
from webui.storage.db import open_database, sqlite_url
from webui.storage.repository import ChatRepository
from webui.ui.chat_view import safe_markdown

pytestmark = pytest.mark.slow


def test_streaming_sends_only_appended_text_never_the_chat(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    repo = ChatRepository(open_database(sqlite_url(data)))
    conv = repo.create_conversation("Long chat", character="Assistant")
    for i in range(30):  # a longer history, so a re-send of the chat would be obvious
        repo.add_message(conv.id, "user" if i % 2 == 0 else "assistant", f"Message {i}: something to say.")
    app = start_app(data)
    try:
        ui = GradioSession(app.url, "streaming-test")
        ui.page_load()
        ui.run("open_chat", {"chat-list": conv.id})
        ui.run("prepare", {"chat-input": "Write a long story about a castle."})
        messages = ui.run("respond")
    finally:
        app.stop()

    by_elem = {c.get("props", {}).get("elem_id"): cid for cid, c in ui.components.items()}
    outputs = ui.deps[ui.fn_index["respond"]]["outputs"]
    assert by_elem["chatbot"] not in outputs  # the chat is never part of the streaming step
    live = outputs.index(by_elem["live-reply"])
    generating = [m["output"]["data"] for m in messages if m.get("msg") == "process_generating"]
    assert len(generating) > 5
    streamed = ""
    for data_ in generating[2:]:  # after the bubble is shown and gets its first text: appends only
        for index, diff in enumerate(data_):
            if index != live:
                assert diff == [], diff
        assert data_[live] and all(op[0] == "append" and op[1] == [] for op in data_[live]), data_[live]
        assert len(json.dumps(data_)) < 1000
        streamed += "".join(op[2] for op in data_[live])
    stored = ChatRepository(open_database(sqlite_url(data))).messages(conv.id)[-1].content
    # A delta of only trailing newlines is not sent (the bubble would look the same; the finished
    # message is shown from the database), so compare without trailing whitespace.
    assert streamed and safe_markdown(stored).rstrip().endswith(streamed.rstrip())
