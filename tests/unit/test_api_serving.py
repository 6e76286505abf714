"""The API's serving layer in process: the /v1 and /api routers on a fake model (no Gradio, no
server), and the ChatService calls they go through (saved chats, raw completions, stop)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.fakes import FakeBackend
from webui.chat.service import ChatService
from webui.config import Settings
from webui.context import AppContext, build_context
from webui.engine.protocol import ModelSpec
from webui.generation.params import GenerationParams
from webui.server import create_api_app

CHAT = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 3}
ERROR_KEYS = {"message", "type", "param", "code"}


def make_app(data_dir: Path, tokens: list[str], delay: float = 0.0, **settings: object) -> tuple[AppContext, FastAPI]:
    ctx = build_context(Settings(data_dir=data_dir, **settings), load_model=False)
    options = {"tokens": tokens, "delay": delay}
    ctx.engine.load(ModelSpec(path="fake", loader="fake", display_name="fake", options=options))
    app = create_api_app(ctx)
    return ctx, app


@pytest.fixture
def served(tmp_path: Path, fake_backend: None) -> Iterator[tuple[AppContext, TestClient]]:
    ctx, app = make_app(tmp_path, ["Hello", " there", "!"])
    with TestClient(app) as client:
        yield ctx, client
    ctx.engine.shutdown()


def error(resp, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == ERROR_KEYS and err["message"]
    if code is not None:
        assert err["code"] == code, err
    return err


def test_saved_api_chats_are_stored_through_the_chat_service(served: tuple[AppContext, TestClient]) -> None:
    ctx, client = served
    body = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Remember   kiwi"}],
            "max_tokens": 3, "save": True}
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    conv_id = int(r.headers["x-conversation-id"])
    assert r.json()["conversation_id"] == conv_id and r.json()["choices"][0]["message"]["content"] == "Hello there!"
    conv = ctx.repo.get_conversation(conv_id)
    assert conv.title == "Remember kiwi" and conv.settings["mode"] == "instruct"
    assert [(m.role, m.content) for m in ctx.repo.messages(conv_id)] == [
        ("system", "Be brief."), ("user", "Remember   kiwi"), ("assistant", "Hello there!")]

    r = client.post("/v1/chat/completions", json={**CHAT, "conversation_id": conv_id})
    assert r.status_code == 200 and r.headers["x-conversation-id"] == str(conv_id)
    assert [m.content for m in ctx.repo.messages(conv_id)][-2:] == ["Hello", "Hello there!"]
    error(client.post("/v1/chat/completions", json={**CHAT, "conversation_id": 999}), 404, "conversation_not_found")
    last_assistant = {"messages": [{"role": "assistant", "content": "x"}], "conversation_id": conv_id}
    assert error(client.post("/v1/chat/completions", json=last_assistant), 400)["param"] == "messages"
    error(client.post("/v1/chat/completions", json={**CHAT, "persona": "Nobody"}), 404, "persona_not_found")


def test_unsaved_chats_store_nothing_and_stream_sse(served: tuple[AppContext, TestClient]) -> None:
    ctx, client = served
    assert not hasattr(client.app.state, "api_threads")  # type: ignore[attr-defined]
    before = len(ctx.repo.list_conversations())
    with client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True, "unknown_knob": 1}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-ignored-params"] == "unknown_knob" and r.headers["cache-control"] == "no-cache"
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    text = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content", "") for line in lines[:-1])
    assert text == "Hello there!" and len(ctx.repo.list_conversations()) == before
    # The stream was read on the API's own threads (sized past the queue), not the pool the UI uses.
    assert client.app.state.api_threads.total_tokens == ctx.settings.max_queue + 8  # type: ignore[attr-defined]


def test_text_completions_go_through_the_chat_service(served: tuple[AppContext, TestClient]) -> None:
    _, client = served
    r = client.post("/v1/completions", json={"prompt": "Say:", "max_tokens": 2, "echo": True})
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["text"] == "Say:Hello there" and choice["finish_reason"] == "length"
    assert r.json()["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3,
                                 "prompt_tokens_details": {"cached_tokens": 0}}
    error(client.post("/v1/completions", json={"prompt": "x", "suffix": "y"}), 400, "unsupported_parameter")


def test_ollama_routes(served: tuple[AppContext, TestClient]) -> None:
    _, client = served
    assert client.post("/api/chat", content=json.dumps({"messages": []})).json()["done_reason"] == "load"
    raw = {"prompt": "Go", "raw": True, "stream": False, "options": {"num_predict": 2}}
    r = client.post("/api/generate", content=json.dumps(raw))
    assert r.json()["response"] == "Hello there" and r.json()["eval_count"] == 2
    with client.stream("POST", "/api/chat", json={"messages": [{"role": "user", "content": "Hi"}]}) as resp:
        assert resp.headers["content-type"].startswith("application/x-ndjson")
        objs = [json.loads(line) for line in resp.iter_lines() if line]
    assert "".join(o["message"]["content"] for o in objs) == "Hello there!" and objs[-1]["done"]
    refused = client.post("/api/chat", json={"messages": [{"role": "user", "content": "x", "images": ["a"]}]})
    assert refused.status_code == 400 and refused.json() == {"error": "Images are not supported."}  # Ollama's shape


def test_internal_chat_prompt_uses_the_api_errors_and_auth(tmp_path: Path, fake_backend: None) -> None:
    ctx, app = make_app(tmp_path, ["x"], api_keys=["sk-1"])
    auth = {"Authorization": "Bearer sk-1"}
    try:
        with TestClient(app) as client:
            url = "/v1/internal/chat-prompt"
            assert error(client.post(url, json=CHAT), 401, "missing_api_key")["type"] == "authentication_error"
            error(client.post(url, content=b"{oops", headers=auth), 400, "invalid_json")
            error(client.post(url, json=[1], headers=auth), 400)
            error(client.post(url, json={"messages": []}, headers=auth), 400)
            error(client.post(url, json={**CHAT, "character": "Nobody"}, headers=auth), 404, "character_not_found")
            blocks = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi!"}]}]}
            r = client.post(url, json=blocks, headers=auth)
            assert r.status_code == 200 and r.json() == {"prompt": "<user>Hi!\n<assistant>"}
    finally:
        ctx.engine.shutdown()


def test_complete_is_stopped_by_its_session_key_and_by_closing(chat_service) -> None:  # type: ignore[no-untyped-def]
    chat: ChatService = chat_service(tokens=["x"] * 500, delay=0.01)
    params = GenerationParams(max_new_tokens=500)
    reply = chat.complete("Go", params, session_key="api:1")
    assert next(reply).text == "x"
    started = time.monotonic()
    assert chat.stop("api:1")
    *_, last = reply
    assert last.done and last.finish_reason == "cancelled" and time.monotonic() - started < 3
    assert not chat.stop("api:1")  # untracked once finished

    reply = chat.complete("Go", params, session_key="api:2")
    next(reply)
    started = time.monotonic()
    reply.close()
    assert not chat.stop("api:2")
    chat.engine.worker.call(lambda: None)  # waits for the worker: free at once, the closed one was cancelled
    assert time.monotonic() - started < 3  # the whole reply would take 5 s


def test_answer_saved_stores_the_history_and_the_reply(chat_service) -> None:  # type: ignore[no-untyped-def]
    chat: ChatService = chat_service(tokens=["Fine", "."])
    history = [("user", "How are you?"), ("assistant", "Well."), ("user", "And now?")]
    conv_id, reply = chat.answer_saved(history, GenerationParams(), character="Assistant", mode="chat")
    assert chat.repo.get_conversation(conv_id).title == "How are you?"  # stored before the reply runs
    *_, last = reply
    assert last.done and last.text == "Fine."
    assert [(m.role, m.content) for m in chat.repo.messages(conv_id)] == [*history, ("assistant", "Fine.")]
    assert chat.has_conversation(conv_id) and not chat.has_conversation(conv_id + 1)


def test_logit_bias_needs_a_backend_that_declares_it(served: tuple[AppContext, TestClient],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake backend declares logit_bias but knows no vocabulary, and a backend may not declare it:
    both refuse with a 400 naming the backend, before anything is generated."""
    ctx, client = served
    body = {**CHAT, "logit_bias": {"5": 10}}
    refused = client.post("/v1/chat/completions", json=body)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "logit_bias"
    assert "not supported by the fake backend" in refused.json()["error"]["message"]
    ctx.engine.model.info = replace(ctx.engine.model.info, vocab_size=50)
    assert client.post("/v1/chat/completions", json=body).status_code == 200  # declared, and an id in range
    monkeypatch.setattr(FakeBackend, "info", replace(FakeBackend.info, params=FakeBackend.info.params - {"logit_bias"}))
    assert client.post("/v1/chat/completions", json=body).status_code == 400
