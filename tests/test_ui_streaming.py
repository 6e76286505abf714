"""The UI streams diffs, not the whole chat per token (checked on Gradio's own wire protocol)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.server_utils import start_app
from webui.storage.db import open_database, sqlite_url
from webui.storage.repository import ChatRepository
from webui.ui.chat_view import safe_markdown

pytestmark = pytest.mark.slow


class GradioSession:
    """Calls UI events over Gradio's queue protocol, as the browser does, keeping every SSE message."""

    def __init__(self, url: str, session_hash: str) -> None:
        self.url = url
        self.session_hash = session_hash
        config = httpx.get(f"{url}/config").json()
        self.deps = config["dependencies"]
        self.components = {c["id"]: c for c in config["components"]}
        self.fn_index = {d.get("api_name"): i for i, d in enumerate(self.deps)}

    def page_load(self) -> None:
        """Run every on-load event, as opening the page does (fills the chat list and so on)."""
        for index, dep in enumerate(self.deps):
            if any(target[1] == "load" for target in dep["targets"]):
                self.run(index)

    def run(self, event: str | int, values: dict[str, object] | None = None) -> list[dict]:
        """Trigger an event (api_name or index); inputs take ``values`` by elem_id, else their
        default (None for states)."""
        index = event if isinstance(event, int) else self.fn_index[event]
        data = []
        for cid in self.deps[index]["inputs"]:
            comp = self.components[cid]
            elem_id = comp.get("props", {}).get("elem_id")
            if values and elem_id in values:
                data.append(values[elem_id])
            else:
                data.append(None if comp.get("type") == "state" else comp.get("props", {}).get("value"))
        body = {"data": data, "fn_index": index, "session_hash": self.session_hash, "event_data": None, "trigger_id": None}
        if self.deps[index].get("queue") is False:  # runs at once, outside the queue
            response = httpx.post(f"{self.url}/gradio_api/run/predict", json=body, timeout=60)
            response.raise_for_status()
            return [{"msg": "process_completed", "output": response.json()}]
        httpx.post(f"{self.url}/gradio_api/queue/join", json=body).raise_for_status()
        messages = []
        with httpx.stream("GET", f"{self.url}/gradio_api/queue/data?session_hash={self.session_hash}", timeout=120) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    msg = json.loads(line[5:])
                    messages.append(msg)
                    if msg.get("msg") == "process_completed":
                        break
        return messages


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
    assert streamed and safe_markdown(stored).endswith(streamed)
