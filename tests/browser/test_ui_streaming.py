"""The chat's reply streams over its own event stream (``live-reply/<token>``), never through a
streaming Gradio event and never with the chat in it; checked on the wire, as the page uses it."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.gradio_session import GradioSession, html_text
from tests.support.server_utils import RunningApp, served_app
from webui.storage.db import open_database, sqlite_url
from webui.storage.repository import ChatRepository
from webui.ui.live_reply import markdown_renderer

pytestmark = pytest.mark.slow
STEPS = {"prepare", "begin_regenerate", "begin_continue", "after_turn"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    yield from served_app(tmp_path_factory, "ui-streaming")


def repo_of(app: RunningApp) -> ChatRepository:
    return ChatRepository(open_database(sqlite_url(app.data_dir)))


def long_chat(app: RunningApp, title: str) -> int:
    repo = repo_of(app)
    conv = repo.create_conversation(title, character="Assistant")
    for i in range(30):  # a longer history, so a re-send of the chat would be obvious
        repo.add_message(conv.id, "user" if i % 2 == 0 else "assistant", f"Message {i}: something to say.")
    return conv.id


def session(app: RunningApp, name: str, conv_id: int) -> GradioSession:
    ui = GradioSession(app.url, name)
    ui.page_load()
    ui.run("open_chat", {"chat-list": conv_id})
    return ui


def test_the_reply_streams_on_its_own_route_without_the_chat(app: RunningApp) -> None:
    conv_id = long_chat(app, "Streaming chat")
    ui = session(app, "streaming-test", conv_id)
    # No Gradio event streams a reply: Send, Regenerate and Continue run once and complete, and no
    # streaming event writes the chat (the browser's Gradio frontend does per-update work that grows
    # with the page while an event streams).
    chatbot = next(cid for cid, c in ui.components.items() if c.get("props", {}).get("elem_id") == "chatbot")
    for dep in ui.deps:
        generator = dep.get("types", {}).get("generator")
        assert not (generator and (chatbot in dep["outputs"] or dep.get("api_name") in STEPS)), dep.get("api_name")
    assert {dep.get("api_name") for dep in ui.deps} >= STEPS

    prepared = ui.run("prepare", {"chat-input": "Write a long story about a castle."})
    token = str(ui.output("prepare", "live-token", prepared))
    assert len(token) >= 32
    events = [payload for _, payload in ui.read_live_reply(token)]
    htmls = [e["html"] for e in events if "html" in e]
    assert len(htmls) > 5 and events[-1] == {"done": True}
    assert not any("error" in e for e in events)
    assert all("Message 3:" not in h for h in htmls)  # never the chat, only the reply being written
    stored = repo_of(app).messages(conv_id)[-1]
    assert stored.role == "assistant" and stored.content.strip()
    assert " ".join(html_text(htmls[-1]).split()) in " ".join(stored.content.split())

    # The token is used up; the step after the stream shows the stored reply in the chat.
    assert httpx.get(f"{app.url}/live-reply/{token}").status_code == 404
    assert httpx.get(f"{app.url}/live-reply/not-a-token").status_code == 404
    after = ui.run("after_turn")
    chat = ui.output("after_turn", "chatbot", after)
    assert len(chat) == 32 and chat[-1]["role"] == "assistant"  # type: ignore[arg-type, index]
    assert ui.output("after_turn", "rename-box", after) == "Streaming chat"


def test_a_new_chat_shows_the_title_it_gets_from_its_first_message(app: RunningApp) -> None:
    ui = GradioSession(app.url, "new-chat-title")
    ui.page_load()
    ui.run("new_chat")
    values = {"chat-input": "Tell me about tide pools.", "param-max_new_tokens": 8}
    assert list(ui.live_reply("prepare", values))[-1][1] == {"done": True}
    after = ui.run("after_turn")
    assert ui.output("after_turn", "rename-box", after) == "Tell me about tide pools."


def test_closing_the_stream_stops_the_model(app: RunningApp) -> None:
    conv_id = long_chat(app, "Closed stream")
    ui = session(app, "closing-test", conv_id)
    values = {"chat-input": "Count from one to a thousand.", "param-max_new_tokens": 2000, "param-ban_eos_token": True}
    seen = 0
    for _, payload in ui.live_reply("prepare", values):
        seen += "html" in payload
        if seen == 3:
            break  # closes the connection, as a closed tab does
    deadline = time.monotonic() + 30
    while "abandoned by its reader" not in app.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "abandoned by its reader" in app.log()
    reply = repo_of(app).messages(conv_id)[-1]
    assert reply.role == "assistant" and reply.content.strip()
    # The model is free again: the next reply streams at once.
    events = [p for _, p in session(app, "after-close", conv_id).live_reply("prepare", {"chat-input": "Hi!"})]
    assert events[-1] == {"done": True} and any("html" in e for e in events)


def test_stop_ends_the_stream_and_keeps_the_text(app: RunningApp) -> None:
    conv_id = long_chat(app, "Stopped stream")
    ui = session(app, "stop-test", conv_id)
    values = {"chat-input": "Count from one to a thousand.", "param-max_new_tokens": 2000, "param-ban_eos_token": True}
    started = time.monotonic()
    events = []
    for _, payload in ui.live_reply("prepare", values):
        events.append(payload)
        if sum("html" in e for e in events) == 3:
            ui.run("stop")
    assert events[-1] == {"done": True}
    assert time.monotonic() - started < 60  # 2000 tokens would take far longer on this machine
    stored = repo_of(app).messages(conv_id)[-1].content
    last_html = [e["html"] for e in events if "html" in e][-1]
    # compared as shown: both rendered (a list item's "1." is drawn by the list, not held in its text)
    shown_stored = html_text(markdown_renderer().render(stored))
    assert stored.strip() and " ".join(html_text(last_html).split()) in " ".join(shown_stored.split())


def test_a_failing_turn_reports_its_error_on_the_stream_and_after(app: RunningApp) -> None:
    repo = repo_of(app)
    conv = repo.create_conversation("No reply yet", character="Assistant")
    repo.add_message(conv.id, "user", "A question with no answer yet.")
    ui = session(app, "error-test", conv.id)
    token = str(ui.output("begin_continue", "live-token", ui.run("begin_continue")))
    events = [p for _, p in ui.read_live_reply(token)]
    errors = [e["error"] for e in events if "error" in e]
    assert errors == ["There is no reply to continue: send a message first."] and events[-1] == {"done": True}
    assert len(repo.messages(conv.id)) == 1  # nothing was added
    # The step after the stream shows the error as a warning, and the chat as stored.
    after = ui.run("after_turn", {"live-token": token})
    assert [m["log"] for m in after if m.get("msg") == "log" and m.get("level") == "warning"] == errors
    assert len(ui.output("after_turn", "chatbot", after)) == 1  # type: ignore[arg-type]
